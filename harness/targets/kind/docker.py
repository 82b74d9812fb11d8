"""The few Docker operations the kind target's image builds need, each with its log and a
failure that says which command failed and how.

Builds use Docker's classic builder (``DOCKER_BUILDKIT=0``): Debian's docker.io ships no
buildx, and the classic builder is what every Docker 20.10 and later still has.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness.errors import TargetError, indent_tail

Report = Callable[[str], None]


class Docker:
    """One docker client, with a directory for the logs of long commands."""

    def __init__(self, client: str, *, log_dir: Path) -> None:
        self.client = client
        self.log_dir = log_dir
        self.env = {**os.environ, "DOCKER_BUILDKIT": "0"}

    def has_image(self, reference: str) -> bool:
        result = subprocess.run(
            [self.client, "image", "inspect", "--format", "{{.Id}}", reference],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            env=self.env,
        )
        return result.returncode == 0

    def run(
        self,
        *args: str,
        stdin: bytes | None = None,
        timeout: float = 600.0,
        what: str | None = None,
    ) -> str:
        """Run ``docker ARGS``; its stdout, or a TargetError with its stderr's tail."""
        argv = [self.client, *args]
        try:
            result = subprocess.run(
                argv, input=stdin, capture_output=True, check=False, timeout=timeout, env=self.env
            )
        except subprocess.TimeoutExpired as exc:
            raise TargetError(
                f"{what or 'docker ' + args[0]} took longer than {timeout:.0f}s\n"
                f"  command: {' '.join(argv)}"
            ) from exc
        if result.returncode != 0:
            output = (result.stderr or result.stdout).decode(errors="replace")
            raise TargetError(
                f"{what or 'docker ' + args[0]} failed (exit {result.returncode})\n"
                f"  command: {' '.join(argv[:12])}{' ...' if len(argv) > 12 else ''}\n"
                f"{indent_tail(output)}"
            )
        return result.stdout.decode(errors="replace")

    def pipe(self, producer: Sequence[str], *args: str, what: str, timeout: float = 900.0) -> str:
        """``producer | docker ARGS``: a tar stream into ``docker import`` or ``docker exec -i``."""
        with tempfile.TemporaryFile() as errors:
            source = subprocess.Popen(list(producer), stdout=subprocess.PIPE, stderr=errors)
            stream = source.stdout
            if stream is None:  # Popen with stdout=PIPE always sets it; this satisfies mypy.
                raise TargetError(f"{what}: {producer[0]} gave no output stream")
            try:
                result = subprocess.run(
                    [self.client, *args],
                    stdin=stream,
                    capture_output=True,
                    check=False,
                    timeout=timeout,
                    env=self.env,
                )
            finally:
                stream.close()
                source_rc = source.wait(timeout=timeout)
            errors.seek(0)
            producer_errors = errors.read().decode(errors="replace")
        if result.returncode != 0 or source_rc != 0:
            raise TargetError(
                f"{what} failed (docker exit {result.returncode}, {producer[0]} exit {source_rc})\n"
                f"  command: {' '.join(producer)} | docker {' '.join(args)}\n"
                f"{indent_tail(result.stderr.decode(errors='replace') + producer_errors)}"
            )
        return result.stdout.decode(errors="replace")

    def import_directory(
        self, directory: Path, reference: str, *, changes: Sequence[str] = ()
    ) -> None:
        """``docker import`` a directory tree as a one-layer image (owners kept numerically)."""
        change_args = [arg for change in changes for arg in ("--change", change)]
        self.pipe(
            ["tar", "--numeric-owner", "-C", str(directory), "-c", "."],
            "import",
            *change_args,
            "-",
            reference,
            what=f"importing {directory} as {reference}",
        )

    def build(
        self,
        context: Path,
        reference: str,
        *,
        dockerfile: Path | None = None,
        build_args: Mapping[str, str] | None = None,
        log_name: str,
        timeout: float = 1800.0,
    ) -> float:
        """``docker build`` (classic builder) with its output in a log; the seconds it took."""
        argv = [self.client, "build", "-t", reference]
        if dockerfile is not None:
            argv += ["-f", str(dockerfile)]
        for name, value in (build_args or {}).items():
            argv += ["--build-arg", f"{name}={value}"]
        argv.append(str(context))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"docker-build-{log_name}.log"
        started = time.monotonic()
        with log_path.open("w") as log:
            log.write("$ " + " ".join(argv) + "\n")
            log.flush()
            result = subprocess.run(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=timeout,
                env=self.env,
            )
        if result.returncode != 0:
            raise TargetError(
                f"building image {reference} failed (exit {result.returncode})\n"
                f"  command: {' '.join(argv)}\n  log: {log_path}\n"
                f"{indent_tail(log_path.read_text(errors='replace'))}"
            )
        return time.monotonic() - started


def static_root(path: Path, files: Mapping[str, Path], *, user: int = 0) -> Path:
    """A tar of an otherwise empty root for static binaries: ``/etc/passwd``, ``/etc/group``,
    ``/tmp`` and ``files`` ({path in the image: file here}, made executable)."""
    passwd = (
        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n"
    )
    group = "root:x:0:\nnonroot:x:65532:\n"
    with tarfile.open(path, "w") as tar:
        for directory, mode in (("etc", 0o755), ("tmp", 0o1777), ("home/nonroot", 0o700)):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            if directory == "home/nonroot":
                info.uid = info.gid = 65532
            tar.addfile(info)
        for name, text in (("etc/passwd", passwd), ("etc/group", group)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, source in files.items():
            info = tar.gettarinfo(str(source), arcname=name.lstrip("/"))
            info.mode = 0o755
            info.uid = info.gid = user
            info.uname = info.gname = ""
            with source.open("rb") as handle:
                tar.addfile(info, handle)
    return path
