"""Supervised processes: start detached, stop the whole group, report a crash with its log."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import TargetError
from harness.targets.processes import (
    Process,
    debian_command,
    free_port,
    port_bindable,
    port_in_use,
    start_time,
    together,
    wait_http_ok,
    wait_port_bindable,
)
from harness.waits import poll


def test_start_then_stop_leaves_nothing_running(tmp_path: Path) -> None:
    process = Process("sleeper", tmp_path)
    pid = process.start([sys.executable, "-c", "import time; time.sleep(60)"])
    assert process.is_running() and process.pid() == pid
    assert process.stop() is True
    assert not process.is_running()
    assert not process.pid_file.exists()


def test_stop_when_never_started_is_harmless(tmp_path: Path) -> None:
    assert Process("ghost", tmp_path).stop() is False


def test_crash_during_readiness_reports_the_log_tail(tmp_path: Path) -> None:
    process = Process("crasher", tmp_path)
    command = [sys.executable, "-c", "import sys; print('bad flag --frobnicate'); sys.exit(3)"]
    process.start(command)
    with pytest.raises(TargetError) as caught:
        wait_http_ok(
            process,
            f"http://127.0.0.1:{free_port()}/healthz",
            within=30,
            command="crasher --frobnicate",
        )
    message = str(caught.value)
    assert "crasher exited during start-up" in message
    assert "bad flag --frobnicate" in message
    assert str(process.log) in message


def test_readiness_timeout_shows_the_last_probe(tmp_path: Path) -> None:
    process = Process("silent", tmp_path)
    process.start([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(
            TargetError, match=r"did not become ready within 0s\n  probe: GET .* ConnectError"
        ):
            wait_http_ok(process, f"http://127.0.0.1:{free_port()}/", within=0.2, command="silent")
    finally:
        process.stop()


def test_port_in_use_is_detected() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert port_in_use(sock.getsockname()[1])
    assert not port_in_use(free_port())


def test_wait_gone_returns_once_a_process_it_does_not_own_has_exited() -> None:
    import subprocess

    from harness.targets.processes import pid_alive, wait_gone

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert pid_alive(child.pid)
    child.terminate()
    wait_gone(child.pid, within=10)
    child.wait()
    assert not pid_alive(child.pid)


def test_wait_gone_kills_a_process_that_ignores_the_request() -> None:
    import subprocess
    import threading

    from harness.targets.processes import pid_alive, wait_gone

    stubborn = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", stubborn], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    child.terminate()
    threading.Thread(target=child.wait, daemon=True).start()  # reap it once it is killed
    started = time.monotonic()
    wait_gone(child.pid, within=0.3)
    assert not pid_alive(child.pid)
    assert time.monotonic() - started >= 0.3  # it had to be killed: SIGTERM was ignored


def test_a_free_port_for_a_server_is_below_the_ephemeral_range() -> None:
    """Never one the kernel could give an outgoing connection while the server restarts."""
    from pathlib import Path

    from harness.targets.processes import free_port, port_in_use

    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_port() for _ in range(20)}
    assert all(1024 <= port < low - 100 for port in ports), sorted(ports)
    assert not any(port_in_use(port) for port in ports)
    assert len(ports) > 1, "picked at random, so two targets rarely want the same one"


def test_a_port_held_by_one_loopback_address_cannot_take_a_wildcard_listener() -> None:
    """What kube-apiserver's --bind-address=0.0.0.0 meets when anything holds its port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        assert not port_bindable(port)
        assert not wait_port_bindable(port, within=0.2)
    assert port_bindable(port)


def test_a_missing_debian_command_names_its_package() -> None:
    expected = r"no-such-server: not found on PATH; .*: apt-get install x$"
    with pytest.raises(TargetError, match=expected):
        debian_command("no-such-server", "x", "the local target runs it")
    assert debian_command("sh", "dash", "a shell") == shutil.which("sh")


@contextlib.contextmanager
def _stranger(*argv: str) -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated process, running (past exec) once this yields; must never be signalled."""
    script = "import time; print('up', flush=True); time.sleep(60)"
    stranger = subprocess.Popen(
        [sys.executable, "-c", script, *argv], start_new_session=True, stdout=subprocess.PIPE
    )
    try:
        assert stranger.stdout is not None and stranger.stdout.readline() == b"up\n"
        yield stranger
    finally:
        if stranger.poll() is None:
            stranger.kill()
        stranger.wait()


def test_a_recycled_pid_is_not_signalled(tmp_path: Path) -> None:
    process = Process("server", tmp_path)
    process.start([sys.executable, "-c", "import time; time.sleep(60)"])
    recorded = process.pid_file.read_text().splitlines()
    process.stop()
    # Start times count clock ticks (10 ms): let one pass, as it always has when the kernel
    # hands a pid out again.
    time.sleep(0.05)
    # The pid now belongs to an unrelated process (the kernel recycled it): the same program
    # even, but started later.
    with _stranger() as stranger:
        process.pid_file.write_text("\n".join([str(stranger.pid), *recorded[1:]]) + "\n")
        assert process.pid() is None
        assert not process.is_running()
        assert process.stop() is False
        assert stranger.poll() is None, "an unrelated process was signalled"


def test_a_recycled_pid_running_another_program_is_not_signalled(tmp_path: Path) -> None:
    process = Process("server", tmp_path)
    with _stranger() as stranger:
        started = start_time(stranger.pid)
        process.pid_file.write_text(f"{stranger.pid}\n/usr/bin/redis-server\nstarted {started}\n")
        assert process.stop() is False
        assert stranger.poll() is None, "an unrelated process was signalled"


def test_a_program_that_rewrites_its_command_line_is_still_recognised(tmp_path: Path) -> None:
    """Redis sets its title to "redis-server 127.0.0.1:<port>", dropping its path and flags."""
    redis = shutil.which("redis-server")
    if redis is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    process = Process("argocd-redis", tmp_path)
    port = free_port()
    process.start([redis, "--bind", "127.0.0.1", "--port", str(port), "--save", ""])
    try:
        _, answered = poll(lambda: port_in_use(port), bool, within=10)
        assert answered
        assert process.is_running()
    finally:
        assert process.stop() is True
    assert not port_in_use(port)


def test_a_pid_file_without_start_time_or_mark_is_never_trusted(tmp_path: Path) -> None:
    with _stranger() as stranger:
        process = Process("etcd", tmp_path)
        process.pid_file.write_text(f"{stranger.pid}\n")
        assert process.stop() is False
        assert stranger.poll() is None, "an unrelated process was signalled"


def test_a_pid_file_another_tool_wrote_is_trusted_when_the_command_line_names_the_mark(
    tmp_path: Path,
) -> None:
    with _stranger(str(tmp_path / "kwok.yaml")) as mine:
        process = Process("kwok-controller", tmp_path, mark=str(tmp_path))
        process.pid_file.write_text(f"{mine.pid}\n")
        assert process.is_running()
        assert process.stop(grace=5.0) is True
        assert mine.wait(timeout=5) is not None


def test_together_runs_its_steps_at_once() -> None:
    """Each step waits for the other to have started: run one after the other, neither ends."""
    first, second = threading.Event(), threading.Event()

    def one() -> None:
        first.set()
        if not second.wait(5):
            raise AssertionError("the second step never started while the first ran")

    def two() -> None:
        second.set()
        if not first.wait(5):
            raise AssertionError("the first step never started while the second ran")

    together(one, two)


def test_together_raises_the_first_error_once_every_step_has_ended() -> None:
    failed, ended = threading.Event(), threading.Event()

    def fails() -> None:
        failed.set()
        raise TargetError("kube-apiserver did not start")

    def slow() -> None:
        failed.wait(5)
        time.sleep(0.3)  # still starting its process after the other step failed
        ended.set()

    with pytest.raises(TargetError, match="kube-apiserver did not start"):
        together(fails, slow)
    assert ended.is_set()
