"""Bad input and faults of `bgh up`: clear errors naming the component, and nothing left running.

These use the cached control-plane binaries and a state directory of their own.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from harness.errors import TargetError
from harness.settings import load_settings
from harness.targets.local import LocalTarget
from tests.cluster.conftest import Cluster


def test_port_in_use_names_the_component_and_port_and_leaves_nothing_running(
    cluster: Cluster, tmp_path: Path
) -> None:
    target = LocalTarget(load_settings(state_dir=tmp_path))
    target.root.mkdir(parents=True)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        (target.root / "state.json").write_text(json.dumps({"kube_apiserver_port": port}))
        with pytest.raises(TargetError) as caught:
            target.up()
    assert f"kube-apiserver: port {port}" in str(caught.value)
    assert "is in use by another process" in str(caught.value)
    assert not any(line.running for line in target.status())


def test_a_controller_that_exits_is_reported_with_its_log_and_everything_is_stopped(
    cluster: Cluster, tmp_path: Path
) -> None:
    target = LocalTarget(load_settings(state_dir=tmp_path))
    target.root.mkdir(parents=True)
    # The controller cannot serve healthz on a port another process holds: it exits at start.
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        state = {"rollouts_metrics_port": taken, "rollouts_healthz_port": taken}
        (target.root / "state.json").write_text(json.dumps(state))
        with pytest.raises(TargetError) as caught:
            target.up()
    message = str(caught.value)
    assert "rollouts-controller" in message
    assert str(target.rollouts_controller.log) in message or "in use" in message
    assert not any(line.running for line in target.status())
    target.down()
