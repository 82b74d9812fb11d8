"""`bgh gate` judges with the local target's Prometheus unless BGH_PROMETHEUS_URL says otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.targets.processes import free_port


@pytest.fixture
def local_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """A local target's recorded ports, with nothing listening on its Prometheus port."""
    port = free_port()
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "state.json").write_text(json.dumps({"prometheus_port": port}))
    monkeypatch.setenv("BGH_STATE_DIR", str(tmp_path))
    # Set then delete: monkeypatch then removes whatever `bgh gate` sets there, after the test.
    monkeypatch.setenv("BGH_PROMETHEUS_URL", "placeholder")
    monkeypatch.delenv("BGH_PROMETHEUS_URL")
    monkeypatch.delenv("BGH_TARGET", raising=False)
    return port


def test_gate_asks_the_local_targets_prometheus(local_state: int) -> None:
    result = CliRunner().invoke(app, ["gate", "--preview", "1.1.0", "--active", "1.0.0"])
    assert result.exit_code == 4, result.output  # Error: that Prometheus does not answer
    assert f"127.0.0.1:{local_state}" in result.output


def test_an_explicit_prometheus_url_wins(local_state: int, monkeypatch: pytest.MonkeyPatch) -> None:
    other = free_port()
    monkeypatch.setenv("BGH_PROMETHEUS_URL", f"http://127.0.0.1:{other}")
    result = CliRunner().invoke(app, ["gate", "--preview", "1.1.0", "--active", "1.0.0"])
    assert result.exit_code == 4, result.output
    assert f"127.0.0.1:{other}" in result.output
    assert f"127.0.0.1:{local_state}" not in result.output
