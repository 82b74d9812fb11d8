"""`make demo` and `make test` on a fresh machine: the Debian packages they install, read from
`make -n` (what make would run), cover everything the local target and the tests run from Debian;
without root they stop at once with the exact command to run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
# harness calls debian_command("prometheus", "prometheus", ...) for each Debian program it runs.
DEBIAN_COMMAND = re.compile(r'debian_command\(\s*"[^"]+",\s*"([^"]+)"')

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def installed_by(target: str) -> set[str]:
    """The packages ``make -n <target>`` shows it would check and install."""
    dry = subprocess.run(
        ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    lists = re.findall(r"for pkg in ([^;]+); do", dry)
    assert len(lists) == 1, f"make -n {target} should check one list of packages:\n{dry}"
    assert 'apt-get install -y -qq "${missing[@]}"' in dry
    return set(lists[0].split())


def run_by_the_harness() -> set[str]:
    return {
        package
        for path in (ROOT / "harness").rglob("*.py")
        for package in DEBIAN_COMMAND.findall(path.read_text())
    }


def installed_by_ci() -> set[str]:
    found = re.search(r"apt_packages=\(([^)]*)\)", (ROOT / ".ci" / "run").read_text())
    assert found, ".ci/run lost its apt_packages list"
    return set(found.group(1).split()) - {"curl"}


def test_make_demo_names_every_debian_package_the_local_target_runs() -> None:
    needed = run_by_the_harness()
    assert {"prometheus", "redis-server"} <= needed  # the lookup found what it should
    assert needed <= installed_by("demo")


def test_make_test_names_every_debian_package_ci_installs() -> None:
    assert installed_by("demo") <= installed_by("test")
    assert installed_by_ci() <= installed_by("test")
    assert "chromium" in installed_by("test")


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
@pytest.mark.skipif(os.geteuid() != 0, reason="runs make as another user, which needs root")
def test_without_root_make_stops_at_once_with_the_exact_command() -> None:
    # A copy the other user can read wherever the checkout is (pytest's tmp_path is not).
    with tempfile.TemporaryDirectory() as shared:
        Path(shared).chmod(0o755)
        makefile = Path(shutil.copy(ROOT / "Makefile", shared))
        result = nobody_runs(makefile)
    assert result.returncode != 0
    assert "make demo: missing Debian packages; run this, then make demo again:" in result.stderr
    assert "  sudo apt-get update && sudo apt-get install -y bgh-no-such-package\n" in result.stderr


def nobody_runs(makefile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         "make", "-s", "-f", str(makefile), "-C", "/", "demo-packages",
         "DEMO_PACKAGES=bgh-no-such-package git"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize("value", ["yes", "ON", "1"])
def test_ci_refuses_an_unknown_kind_switch_before_doing_anything(
    value: str, tmp_path: Path
) -> None:
    """The kind suite runs with BGH_CI_KIND=on; it takes on or off, and anything else stops
    `.ci/run` at once (exit 2) rather than after a whole local suite. Only `dirname` is on PATH,
    so a script that went further could install and run nothing."""
    dirname = shutil.which("dirname")
    assert dirname is not None
    (tmp_path / "dirname").symlink_to(dirname)
    env = {**os.environ, "BGH_CI_KIND": value, "PATH": str(tmp_path)}
    done = subprocess.run(
        ["/bin/bash", str(ROOT / ".ci" / "run")], env=env, capture_output=True, text=True,
        check=False, timeout=30,
    )  # fmt: skip
    assert (done.returncode, done.stderr.strip()) == (
        2,
        f"ci: BGH_CI_KIND={value}; expected on or off (the default)",
    )
