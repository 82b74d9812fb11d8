"""Long-lived local processes that outlive the command that started them, tracked by pid files.

``bgh up`` returns while the components keep running, so each one is started in its own session
(process group), logs to a file, and leaves a pid file that ``bgh down`` and ``bgh status`` read.

A pid outlives its process: after a reboot or a crash the number may belong to anything, and
``bgh down`` runs as root in CI. So a pid file records the process's start time (with the boot
it belongs to) and its command, and a process counts as ours, and is signalled, only while both
still match. kwokctl writes its components' pid files with the pid alone; for those the
command line must name a path only that cluster uses (``Process.mark``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness.errors import TargetError, log_tail
from harness.waits import poll


@dataclass(frozen=True)
class Process:
    """One supervised process: its name and where its pid file and log live."""

    name: str
    run_dir: Path
    mark: str | None = None
    """For a pid file another tool wrote (no start time): a string the process's command line
    must contain for it to count as this process."""

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return self.run_dir / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        """The recorded pid while that process is still the one recorded, else None."""
        try:
            lines = self.pid_file.read_text().splitlines()
            pid = int(lines[0].split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if self._is_same(pid, lines) else None

    def _is_same(self, pid: int, lines: list[str]) -> bool:
        if len(lines) >= 3 and lines[2].startswith("started "):
            if lines[2] != f"started {start_time(pid)}":
                return False
            # The program's name, not every argument nor its path: Redis rewrites its command
            # line ("redis-server 127.0.0.1:6379"). A process caught between fork and exec shows
            # none yet; its start time already matched.
            program = Path((_recorded_argv(lines[1]) or [""])[0]).name
            command = " ".join(_cmdline(pid)).split()
            return not command or Path(command[0]).name == program
        if self.mark is not None:
            return any(self.mark in part for part in _cmdline(pid))
        return False  # no way to tell it is ours: never signal it

    def command(self) -> list[str]:
        """The argv the process was started with, as its pid file recorded it."""
        try:
            return _recorded_argv(self.pid_file.read_text().splitlines()[1])
        except (OSError, IndexError):
            return []

    def is_running(self) -> bool:
        # A zombie still answers kill(0); /proc tells it apart.
        pid = self.pid()
        return pid is not None and pid_alive(pid)

    def start(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> int:
        """Start the process detached, appending to its log; returns the pid."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            log.write(f"\n$ {' '.join(argv)}\n".encode())
            log.flush()
            try:
                child = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **(env or {})},
                    cwd=cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                raise TargetError(
                    f"{self.name}: could not start {argv[0]}: {exc}\n  log: {self.log}"
                ) from exc
        self.pid_file.write_text(
            f"{child.pid}\n{shlex.join(argv)}\nstarted {start_time(child.pid)}\n"
        )
        return child.pid

    def stop(self, *, grace: float = 10.0) -> bool:
        """SIGTERM the process group, SIGKILL after ``grace`` seconds; True if it was running.

        Only a process that is still the one the pid file recorded is signalled."""
        pid = self.pid()
        was_running = self.is_running()
        if pid is not None and was_running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
            end = time.monotonic() + grace
            while self.is_running() and time.monotonic() < end:
                _reap(pid)
                time.sleep(0.05)
            if self.is_running():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            _reap(pid)
        self.pid_file.unlink(missing_ok=True)
        return was_running

    def crashed(self, command: str) -> TargetError:
        return TargetError(
            f"{self.name} exited during start-up\n  command: {command}\n  log: {self.log}\n"
            f"{log_tail(self.log)}"
        )


def start_time(pid: int) -> str:
    """When ``pid`` started, as ``<boot id>/<clock ticks since boot>`` (empty if it is gone): a
    pid number recycled later, or after a reboot, gives another value."""
    try:
        ticks = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[19]
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except (OSError, IndexError):
        return ""
    return f"{boot}/{ticks}"


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")[:-1]


def _recorded_argv(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError:
        return []


def running_from(directory: Path) -> list[int]:
    """The pids of every process whose executable lies under ``directory``: how processes that
    lost their supervisor (and pid files) are still found."""
    root = directory.resolve()
    found = []
    for exe in Path("/proc").glob("[0-9]*/exe"):
        try:
            target = Path(os.readlink(exe))
        except OSError:
            continue
        if target.is_relative_to(root) and pid_alive(int(exe.parent.name)):
            found.append(int(exe.parent.name))
    return sorted(found)


def stop_running_from(directory: Path, *, grace: float) -> list[int]:
    """SIGTERM every process running from ``directory``, SIGKILL what is left after ``grace``
    seconds; the pids it found."""
    pids = running_from(directory)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    for pid in pids:
        wait_gone(pid, within=grace)
    return pids


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a zombie holds no ports or files)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_gone(pid: int, *, within: float) -> None:
    """Wait up to ``within`` seconds for a process another tool told to stop, then SIGKILL it.

    The process is not our child, so there is nothing to wait on but /proc.
    """
    end = time.monotonic() + within
    while pid_alive(pid) and time.monotonic() < end:
        time.sleep(0.05)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        while pid_alive(pid):
            time.sleep(0.05)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def free_port() -> int:
    """A free loopback port for a server, below the kernel's ephemeral range.

    A port the kernel may hand out as the source port of an outgoing connection can be taken in
    the moment a server restarts (its listener gone, the next one not bound yet), and the
    restarted server then fails to bind; with hundreds of connections a second on the machine
    that happened to a restarted kube-apiserver. Ports below the range are never handed out.
    """
    low = _ephemeral_low()
    # Below the ports kwokctl picks when not told (counting down from 32767) too.
    candidates = list(range(max(1024, low - 12000), low - 100))
    random.shuffle(candidates)
    for port in candidates[:200]:
        if not port_in_use(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # everything below is taken
        sock.bind(("127.0.0.1", 0))
        found: int = sock.getsockname()[1]
        return found


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def port_in_use(port: int) -> bool:
    """Whether something listens on loopback ``port`` (connections lingering in TIME_WAIT after
    a server stopped do not count: servers bind with SO_REUSEADDR, and so does this check)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def debian_command(command: str, package: str, needed_for: str) -> str:
    """The path of ``command``, from a Debian package the local target runs as it is; its
    absence is an error naming the package."""
    found = shutil.which(command)
    if found is None:
        raise TargetError(f"{command}: not found on PATH; {needed_for}: apt-get install {package}")
    return found


def port_bindable(port: int) -> bool:
    """Whether a server could listen on ``port`` on every address, as kube-apiserver's
    ``--bind-address=0.0.0.0`` does (dual-stack, SO_REUSEADDR like Go's listeners)."""
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            sock.bind(("::", port))
            sock.listen(1)
        except OSError:
            return False
    return True


def wait_port_bindable(port: int, *, within: float) -> bool:
    """Whether ``port`` became bindable within ``within`` seconds (see ``port_bindable``)."""
    _, bindable = poll(lambda: port_bindable(port), bool, within=within)
    return bindable


def wait_http_ok(process: Process, url: str, *, within: float, command: str) -> float:
    """Wait until ``url`` answers 2xx while ``process`` stays alive; returns seconds taken.

    HTTP has no watch, so this is the one permitted kind of loop: a capped backoff, and the
    process's own exit ends it at once with the tail of its log.
    """
    with httpx.Client(timeout=2.0, verify=False) as client:

        def answer() -> str | None:
            try:
                response = client.get(url)
            except httpx.HTTPError as exc:
                return f"GET {url} -> {type(exc).__name__}: {exc}"
            if response.is_success:
                return None
            return f"GET {url} -> HTTP {response.status_code}: {response.text[:200]}"

        return wait_ready(process, answer, within=within, command=command)


def wait_ready(
    process: Process, answer: Callable[[], str | None], *, within: float, command: str
) -> float:
    """Wait until ``answer()`` says ready (None; otherwise it says what it saw) while ``process``
    stays alive; returns seconds taken. A capped backoff; the process's exit ends it at once."""
    started = time.monotonic()
    delay = 0.02
    while True:
        if not process.is_running():
            raise process.crashed(command)
        last = answer()
        if last is None:
            return time.monotonic() - started
        if time.monotonic() - started > within:
            raise TargetError(
                f"{process.name} did not become ready within {within:.0f}s\n"
                f"  probe: {last}\n  command: {command}\n  log: {process.log}\n"
                f"{log_tail(process.log)}"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def together(*steps: Callable[[], None]) -> None:
    """Run ``steps`` at once, each in a thread of its own; return when every one has ended, and
    raise the first one's error (after all ended: nothing is still starting when the caller
    cleans up)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(steps)) as pool:
        futures = [pool.submit(step) for step in steps]
    for future in futures:
        error = future.exception()
        if error is not None:
            raise error


def supervise(
    process: Process,
    argv: Sequence[str],
    *,
    ready: str | Callable[[], str | None],
    ports: Mapping[str, int],
    busy_advice: str,
    within: float,
    report: Callable[[str], None],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> bool:
    """Start ``process`` unless it already runs ``argv``, then wait until it is ready; True if it
    was started here.

    One running other flags or another binary is stopped first. A port another process holds is
    refused with the port's name and ``busy_advice`` (what the user can do about it). ``ready``
    is a URL that answers 2xx when the process is ready, or a check (see ``wait_ready``).
    """
    command = " ".join(argv)

    def wait() -> None:
        if isinstance(ready, str):
            wait_http_ok(process, ready, within=within, command=command)
        else:
            wait_ready(process, ready, within=within, command=command)

    if process.is_running() and process.command() != list(argv):
        report(f"{process.name}: running with other flags or binary; restarting")
        process.stop()
    if process.is_running():
        wait()
        report(f"{process.name}: already running")
        return False
    for name, port in ports.items():
        if port_in_use(port):
            raise TargetError(
                f"{process.name}: {name} port {port} is in use by another process; stop it, "
                f"or {busy_advice}"
            )
    process.start(argv, env=env, cwd=cwd)
    wait()
    return True
