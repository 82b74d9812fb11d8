"""The images the kind target loads into its nodes, built on this machine.

- The demo services come from ``services/Dockerfile`` exactly as users build them, with the
  build arguments ``services/builds.yaml`` lists for each version (``harness.images``); only its
  base images are swapped through the build arguments ``GO_IMAGE`` and ``RUNTIME_IMAGE`` when no
  registry can be reached: a Debian base with this machine's Go toolchain and a module cache
  holding every module ``services/go.sum`` names (``GOPROXY=off``: the build stage never reaches
  the network, which the egress guard would refuse anyway), and an empty root with
  ``/etc/passwd`` standing in for the runtime base (the binary is static and runs as the
  Dockerfile's numeric user).
- The Argo Rollouts controller image is the pinned release's ``rollouts-controller`` (built from
  the Go module proxy, shared with the local target) on an empty root, as upstream's image is,
  tagged with the upstream reference the install manifest names.
- Prometheus is the release Debian packages (the local target runs Debian's binary), built from
  its Go module on an empty root: Debian's build leaves out Kubernetes service discovery, which
  a Prometheus inside the cluster needs.
- The analysis server comes from ``analysis/Dockerfile`` as users build it, with its base image
  swapped through ``PYTHON_IMAGE``: Debian's Python 3.11 with the project's locked dependencies
  (``uv export`` of uv.lock, installed on the host from PyPI) already in place, and pip told to
  use no index, so ``pip install .`` in the Dockerfile never reaches the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from harness import builds, versions
from harness.errors import ConfigError, TargetError, indent_tail
from harness.targets.kind import binaries, rootfs
from harness.targets.kind.docker import Docker, static_root
from harness.targets.kind.node_image import NodeImageBuilder

Report = Callable[[str], None]
REPO_ROOT = Path(__file__).parents[3]

ROLLOUTS_IMAGE = f"quay.io/argoproj/argo-rollouts:{versions.ARGO_ROLLOUTS}"
ROLLOUTS_MODULE = "github.com/argoproj/argo-rollouts"
# Upstream's image runs as nobody.
PROMETHEUS_USER = 65534
# What pyproject.toml's build-system asks for; `pip install .` builds the project with it.
BUILD_BACKEND = "hatchling>=1.24"
# Debian bookworm's glibc, so the wheels installed on the host run on its Python.
DEBIAN_MANYLINUX = "manylinux_2_36"


@dataclass(frozen=True)
class Image:
    """One demo service image to build and load into the kind nodes, with every build argument
    of ``services/Dockerfile`` it takes (``SERVICE``, ``VERSION`` and those of
    ``services/builds.yaml``)."""

    reference: str
    build_args: Mapping[str, str]

    @property
    def service(self) -> str:
        return self.build_args["SERVICE"]

    @property
    def version(self) -> str:
        return self.build_args["VERSION"]


class LocalImages:
    """Images made from what this machine has: Go, the Go module proxy and debootstrap."""

    def __init__(self, node_images: NodeImageBuilder, *, services_dir: Path, report: Report):
        self.node_images = node_images
        self.docker: Docker = node_images.docker
        self.cache_dir = node_images.cache_dir
        self.services_dir = services_dir
        self.report = report

    def go_version(self) -> str:
        go = shutil.which(self.node_images.go)
        if go is None:
            raise ConfigError(f"building the services' Go base needs Go: {self.node_images.go!r}")
        return subprocess.run(
            [go, "env", "GOVERSION"], capture_output=True, text=True, check=True, timeout=60
        ).stdout.strip()

    def go_image(self) -> str:
        """A Go toolchain image whose module cache serves the services' modules offline."""
        go_sum = (self.services_dir / "go.sum").read_bytes() + (
            self.services_dir / "go.mod"
        ).read_bytes()
        key = hashlib.sha256(go_sum + rootfs.SLIM.key().encode()).hexdigest()[:12]
        reference = f"bgh.local/golang:{self.go_version().removeprefix('go')}-{key}"
        if self.docker.has_image(reference):
            return reference
        go = shutil.which(self.node_images.go) or "go"
        goroot = Path(
            subprocess.run(
                [go, "env", "GOROOT"], capture_output=True, text=True, check=True, timeout=60
            ).stdout.strip()
        )
        self.report(f"building {reference} (Go toolchain and the services' modules, offline)")
        work = Path(tempfile.mkdtemp(prefix="golang-", dir=self.node_images.build_dir()))
        try:
            modcache = work / "gomodcache"
            result = subprocess.run(
                [go, "mod", "download", "-x"],
                cwd=self.services_dir,
                capture_output=True,
                text=True,
                check=False,
                timeout=900,
                env={**os.environ, "GOMODCACHE": str(modcache), "GOFLAGS": "-modcacherw"},
            )
            if result.returncode != 0:
                raise TargetError(
                    f"downloading the services' modules failed: {result.stderr.strip()[-800:]}"
                )
            shutil.copytree(goroot, work / "go", symlinks=True)
            self._build(
                work,
                reference,
                f"FROM {self.node_images.rootfs_image(rootfs.SLIM)}\n"
                "COPY go /usr/local/go\n"
                "COPY gomodcache /go/pkg/mod\n"
                "ENV GOPATH=/go GOMODCACHE=/go/pkg/mod GOPROXY=off GOSUMDB=off "
                "GOTOOLCHAIN=local GOFLAGS=-mod=mod "
                "PATH=/usr/local/go/bin:/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
                log_name="golang",
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return reference

    def _build(self, work: Path, reference: str, dockerfile: str, *, log_name: str) -> None:
        """Build ``reference`` from ``dockerfile`` with ``work`` as the context."""
        (work / "Dockerfile").write_text(dockerfile)
        self.docker.build(work, reference, log_name=log_name)

    def runtime_image(self) -> str:
        """An empty root with ``/etc/passwd`` (nonroot is 65532): all a static binary run as the
        Dockerfile's numeric user needs of its runtime base."""
        reference = "bgh.local/static:nonroot"
        if not self.docker.has_image(reference):
            with tempfile.TemporaryDirectory(dir=self.node_images.build_dir()) as work:
                archive = static_root(Path(work) / "static.tar", {})
                self.docker.run("import", str(archive), reference, what=f"importing {reference}")
        return reference

    def service_images(self, images: Iterable[Image], *, local_bases: bool) -> list[str]:
        """Build each image from services/Dockerfile with its build arguments, on local bases
        when ``local_bases`` (else on the Dockerfile's own, pulled)."""
        base_args = (
            {"GO_IMAGE": self.go_image(), "RUNTIME_IMAGE": self.runtime_image()}
            if local_bases
            else {}
        )
        built = []
        for image in images:
            seconds = self.docker.build(
                self.services_dir,
                image.reference,
                dockerfile=self.services_dir / "Dockerfile",
                build_args={**base_args, **image.build_args},
                log_name=f"{image.service}-{image.version}",
            )
            self.report(f"image {image.reference}: built in {seconds:.1f}s")
            built.append(image.reference)
        return built

    def rollouts_image(self) -> str:
        """The Argo Rollouts controller image of the pinned release, built from its module."""
        controller = builds.ensure_built(
            builds.ARGO_ROLLOUTS,
            cache_dir=self.cache_dir,
            go=self.node_images.go,
            report=self.report,
        ).path("rollouts-controller")
        with tempfile.TemporaryDirectory(dir=self.node_images.build_dir()) as work:
            archive = static_root(
                Path(work) / "rollouts.tar", {"/bin/rollouts-controller": controller}
            )
            self.docker.run(
                "import",
                "--change",
                'ENTRYPOINT ["/bin/rollouts-controller"]',
                "--change",
                "USER 999",
                "--change",
                "WORKDIR /home/argo-rollouts",
                str(archive),
                ROLLOUTS_IMAGE,
                what=f"importing {ROLLOUTS_IMAGE}",
            )
        return ROLLOUTS_IMAGE


    def prometheus_image(self) -> str:
        """The pinned Prometheus, built from its Go module, on an empty root; keyed by the
        release and the wrapper module's key."""
        reference = prometheus_reference(binaries.PROMETHEUS.key())
        if self.docker.has_image(reference):
            self.report(f"image {reference}: cached")
            return reference
        started = time.monotonic()
        binary = builds.ensure_built(
            binaries.PROMETHEUS,
            cache_dir=self.cache_dir / "kind",
            go=self.node_images.go,
            report=self.report,
        ).path("prometheus")
        with tempfile.TemporaryDirectory(dir=self.node_images.build_dir()) as work:
            archive = static_root(Path(work) / "prometheus.tar", {"/bin/prometheus": binary})
            self.docker.run(
                "import",
                "--change",
                'ENTRYPOINT ["/bin/prometheus"]',
                "--change",
                f"USER {PROMETHEUS_USER}",
                str(archive),
                reference,
                what=f"importing {reference}",
            )
        self.report(f"image {reference}: built in {time.monotonic() - started:.1f}s")
        return reference

    def python_image(self) -> str:
        """Debian's Python with the project's locked dependencies, for analysis/Dockerfile."""
        requirements = locked_requirements(REPO_ROOT)
        reference = python_reference(requirements)
        if self.docker.has_image(reference):
            return reference
        base = self.node_images.rootfs_image(rootfs.PYTHON)
        self.report(f"building {reference} (Debian's Python 3.11, the locked dependencies)")
        work = Path(tempfile.mkdtemp(prefix="python-", dir=self.node_images.build_dir()))
        try:
            (work / "requirements.txt").write_text(requirements)
            _run(
                [
                    _uv(), "pip", "install", "--quiet", "--target", str(work / "site"),
                    "--python-version", "3.11",
                    "--python-platform", f"{platform.machine()}-{DEBIAN_MANYLINUX}",
                    "-r", str(work / "requirements.txt"), BUILD_BACKEND,
                ],
                what="installing the analysis server's dependencies",
                timeout=900,
            )  # fmt: skip
            # Everything `pip install .` needs is installed: no index, no isolated build
            # environment to fill from one. Debian marks its Python externally managed.
            self._build(
                work,
                reference,
                f"FROM {base}\n"
                "COPY site /usr/local/lib/python3.11/dist-packages\n"
                "ENV PIP_NO_INDEX=1 PIP_NO_BUILD_ISOLATION=0 PIP_BREAK_SYSTEM_PACKAGES=1\n",
                log_name="python",
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return reference

    def analysis_image(self, reference: str, *, local_base: bool) -> str:
        """analysis/Dockerfile, on the local Python base when ``local_base``."""
        build_args = {"PYTHON_IMAGE": self.python_image()} if local_base else {}
        seconds = self.docker.build(
            REPO_ROOT,
            reference,
            dockerfile=REPO_ROOT / "analysis" / "Dockerfile",
            build_args=build_args,
            log_name="analysis",
        )
        self.report(f"image {reference}: built in {seconds:.1f}s")
        return reference


def prometheus_reference(key: str) -> str:
    """bgh.local/prometheus:<release>-<wrapper module key>."""
    return f"bgh.local/prometheus:{versions.PROMETHEUS}-{key}"


def python_reference(requirements: str) -> str:
    """bgh.local/python:3.11-<key>, the key hashing the locked requirements, the build backend
    and the Debian root filesystem: a change to uv.lock makes a new base."""
    text = requirements + BUILD_BACKEND + rootfs.PYTHON.key()
    return f"bgh.local/python:3.11-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def locked_requirements(project: Path) -> str:
    """The project's runtime dependencies as uv.lock pins them (requirements.txt format)."""
    return _run(
        [
            _uv(), "export", "--frozen", "--no-emit-project", "--no-hashes",
            "--no-header", "--no-annotate",
        ],
        what="uv export of uv.lock",
        cwd=project,
    )  # fmt: skip


def _uv() -> str:
    """uv on PATH, else the one `make` installs into .bgh-tools/ (the Makefile's TOOLS)."""
    uv = shutil.which("uv") or shutil.which("uv", path=str(REPO_ROOT / ".bgh-tools" / "bin"))
    if uv is None:
        raise ConfigError(
            "building the analysis server's image needs uv: not on PATH nor in .bgh-tools/bin "
            "(`make venv` installs it there, or pip install uv)"
        )
    return uv


def _run(argv: list[str], *, what: str, cwd: Path | None = None, timeout: float = 120) -> str:
    result = subprocess.run(
        argv, capture_output=True, text=True, check=False, cwd=cwd, timeout=timeout
    )
    if result.returncode != 0:
        raise TargetError(
            f"{what} failed (exit {result.returncode})\n  command: {' '.join(argv)}\n"
            f"{indent_tail(result.stderr or result.stdout)}"
        )
    return result.stdout


def rollouts_install_manifest(node_images: NodeImageBuilder, *, loaded_image: bool) -> str:
    """Argo Rollouts' install.yaml from the pinned module, naming the release's image.

    The module's copy names ``:latest``, which the release process replaces with the tag. Its
    controller is pulled ``Always``; an image loaded into the nodes (``loaded_image``) has no
    registry behind it, so there it is ``IfNotPresent``."""
    module = node_images.module_dir(ROLLOUTS_MODULE, versions.ARGO_ROLLOUTS)
    text = (module / "manifests" / "install.yaml").read_text()
    replacements = {"quay.io/argoproj/argo-rollouts:latest": ROLLOUTS_IMAGE}
    if loaded_image:
        policy = "        imagePullPolicy: "
        replacements[f"{policy}Always\n"] = f"{policy}IfNotPresent\n"
    for old, new in replacements.items():
        if text.count(old) != 1:
            raise TargetError(
                f"Argo Rollouts {versions.ARGO_ROLLOUTS}'s manifests/install.yaml has "
                f"{old.strip()!r} {text.count(old)} times, expected once"
            )
        text = text.replace(old, new)
    return text


def image_ids(docker: Docker, references: Iterable[str]) -> dict[str, str]:
    """{reference: image ID}, for reports."""
    out = docker.run("image", "inspect", "--format", "{{json .Id}}", *references)
    return dict(zip(references, (json.loads(line) for line in out.splitlines()), strict=False))
