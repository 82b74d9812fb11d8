"""One command at a time per state directory: a second `bgh up` refuses and names the first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import TargetError
from harness.settings import PROJECT_ROOT, load_settings
from harness.targets.local import LocalTarget
from harness.targets.local.state import StateLock

HOLD = """
import sys
from pathlib import Path
from harness.targets.local.state import StateLock
with StateLock(Path(sys.argv[1])).held("bgh up"):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_a_second_bgh_up_in_one_state_directory_refuses_naming_the_first(tmp_path: Path) -> None:
    first = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / "local.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=PROJECT_ROOT,
    )
    try:
        assert first.stdout is not None and first.stdout.readline() == b"held\n"
        second = subprocess.run(
            [str(Path(sys.executable).parent / "bgh"), "up"],
            env={**os.environ, "BGH_STATE_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        assert first.stdin is not None
        first.stdin.close()
        first.wait(timeout=10)
    assert second.returncode != 0
    output = " ".join((second.stdout + second.stderr).split())  # rich wraps long lines
    assert f"{tmp_path} is in use by `bgh up` (pid {first.pid}, started " in output
    assert "another BGH_STATE_DIR" in output


def test_the_lock_is_free_again_once_its_holder_is_done(tmp_path: Path) -> None:
    lock = StateLock(tmp_path / "local.lock")
    with lock.held("bgh up"), pytest.raises(TargetError, match=r"in use by `bgh up` \(pid \d+"):
        LocalTarget(load_settings(state_dir=tmp_path)).up()
    with lock.held("bgh down"):
        pass


def test_a_relative_state_dir_is_taken_from_the_project_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings(state_dir=Path(".bgh")).state_dir == PROJECT_ROOT / ".bgh"
    assert LocalTarget(load_settings()).root == PROJECT_ROOT / ".bgh" / "local"
