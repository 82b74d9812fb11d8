"""Two local targets on one machine, each in a state directory of its own, brought up at the same
moment: both healthy, no port and no loopback address shared, each serving its own demo system.

Defects this catches: kwokctl handing both control planes the same component ports (it counts
down from 32767), the fixed Prometheus and analysis server ports, and both data planes giving
their first pods 127.1.0.1.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.delivery import DirectApply
from harness.probes import Side
from harness.settings import load_settings
from harness.targets.local import LocalTarget

pytestmark = pytest.mark.cluster

BGH = Path(sys.executable).parent / "bgh"
TREE = Path(__file__).parents[2] / "gitops"


def _bgh(command: str, state_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BGH), command, "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def two_targets(tmp_path: Path) -> Iterator[tuple[LocalTarget, LocalTarget]]:
    state_dirs = [tmp_path / "first", tmp_path / "second"]
    try:
        starting = [_bgh("up", state_dir) for state_dir in state_dirs]
        outputs = [process.communicate(timeout=900)[0] for process in starting]
        for state_dir, process, output in zip(state_dirs, starting, outputs, strict=True):
            assert process.returncode == 0, f"`bgh up` in {state_dir} failed:\n{output[-3000:]}"
        first, second = (LocalTarget(load_settings(state_dir=d)) for d in state_dirs)
        yield first, second
    finally:
        for process in [_bgh("down", state_dir) for state_dir in state_dirs]:
            process.communicate(timeout=300)


def test_two_local_targets_started_at_once_are_both_healthy_and_share_nothing(
    two_targets: tuple[LocalTarget, LocalTarget], tmp_path: Path
) -> None:
    first, second = two_targets
    for target in two_targets:
        stopped = [line.name for line in target.status() if not line.running]
        assert stopped == [], f"{target.root}: not running: {stopped}"
    ports = [target.state.read() for target in two_targets]
    print(f"\nfirst: {ports[0]}\nsecond: {ports[1]}")
    assert ports[0].keys() == ports[1].keys()
    assert set(ports[0].values()).isdisjoint(ports[1].values())
    networks = [target.read_dataplane()["networks"] for target in two_targets]
    assert networks[0]["pods"] != networks[1]["pods"]
    assert networks[0]["services"] != networks[1]["services"]
    for index, target in enumerate(two_targets):
        tree = tmp_path / f"gitops-{index}"
        shutil.copytree(TREE, tree)
        settings = target.settings.model_copy(update={"gitops_dir": tree})
        deployed = DirectApply(LocalTarget(settings)).deploy("qa")
        assert [d.phase for d in deployed] == ["Healthy"] * 3
    urls = []
    for target in two_targets:
        answer = target.gateway().wait_for_version(Side.ACTIVE, "service-c", "1.0.0")
        assert answer.ok, answer.describe()
        urls.append(target.service_url("demo", "gateway-a", 3000))
    assert urls[0] != urls[1]
    assert first.chart_values()["analysis.judgeUrl"] != second.chart_values()["analysis.judgeUrl"]
