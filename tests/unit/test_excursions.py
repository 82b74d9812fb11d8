"""Waits that tell a transient failure from a final one, with a fake clock and scripted events.

The scripted source stands in for the API server's GET and watch, the one boundary these unit
tests replace; tests/cluster/test_progress_deadline.py drives the same waits against the real
controller on the local target.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from harness.errors import Excursion, RolloutFailed, WaitTimeout
from harness.kube import Kube, Rollout, rollout_from
from harness.rollouts import Phase, Rollouts
from harness.waits import Waited, wait_for
from tests.unit.test_waits import FakeClock, ScriptedSource

DEADLINE = (
    'ProgressDeadlineExceeded: ReplicaSet "r-h3" has timed out progressing.'  # upstream's words
)


def wait_through_blips(source: ScriptedSource, *, within: float = 60.0) -> Waited[str]:
    """Wait for Paused; a state "Blip" is an excursion."""
    return wait_for(
        source,
        "r",
        lambda state: state == "Paused",
        what="thing demo/r: Paused",
        describe=lambda state: f"state={state}",
        within=within,
        excursion=lambda state: "a blip" if state == "Blip" else None,
        clock=source.clock,
    )


def test_a_recoverable_state_is_waited_through_and_reported_with_when_and_how_long(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    source = ScriptedSource(
        clock,
        reads=["Progressing"],
        streams=[[(2.0, "Blip"), (3.0, "Blip"), (1.5, "Progressing"), (0.5, "Paused")]],
    )
    with caplog.at_level(logging.INFO, logger="bgh.wait"):
        waited = wait_through_blips(source)
    assert waited.value == "Paused"
    assert waited.excursions == (Excursion("a blip", started=2.0, seconds=4.5),)
    lines = [r.getMessage() for r in caplog.records]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "thing demo/r: Paused: waiting through a blip (the controller recovers from it)",
        "thing demo/r: Paused: left after 4.5s: a blip",
    ]
    assert "thing demo/r: Paused: waiting through a blip (the controller recovers from it)" in lines
    assert "thing demo/r: Paused: left after 4.5s: a blip" in lines
    assert lines[-1] == "thing demo/r: Paused: met after 7.00s (waited through 1 excursion(s))"


def test_an_excursion_still_going_on_at_the_deadline_is_in_the_timeout() -> None:
    clock = FakeClock()
    source = ScriptedSource(clock, reads=["Progressing"], streams=[[(5.0, "Blip"), (30.0, None)]])
    with pytest.raises(WaitTimeout) as caught:
        wait_through_blips(source, within=30.0)
    assert caught.value.excursions == (Excursion("a blip", started=5.0, seconds=None),)
    assert str(caught.value).endswith("waited through: at 5.0s until the end: a blip")


# -- Rollouts: which Degraded is final --------------------------------------------------------


def rollout(*, degraded: str | None = None, paused: bool = False, **spec: Any) -> Rollout:
    """A blue-green Rollout on its way to revision 3: Progressing, Paused, or Degraded with the
    message the controller writes (``<reason>: <message>``)."""
    status: dict[str, Any] = {
        "observedGeneration": "2",
        "currentPodHash": "h3",
        "stableRS": "h2",
        "blueGreen": {"activeSelector": "h2", "previewSelector": "h3"},
        "phase": "Progressing",
        "message": "more replicas need to be updated",
    }
    if degraded is not None:
        status |= {"phase": "Degraded", "message": degraded}
    if degraded is not None and degraded.startswith("RolloutAborted"):
        status["abort"] = True
    if paused:
        status |= {"phase": "Paused", "message": "BlueGreenPause"}
    return rollout_from(
        {
            "metadata": {"name": "r", "namespace": "demo", "generation": 2},
            "spec": {
                "replicas": 2,
                "strategy": {"blueGreen": {"activeService": "a", "previewService": "p"}},
                **spec,
            },
            "status": status,
        }
    )


@pytest.fixture
def rollouts(tmp_path: Path) -> Rollouts:
    """Rollouts over a kubeconfig whose server is never contacted: every read and watch comes
    from the scripted source put in place of the API server."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\n"
    )
    return Rollouts(Kube(kubeconfig=kubeconfig, context=None, namespace="demo"), timeout=60)


def scripted(rollouts: Rollouts, first: Rollout, *then: tuple[float, Rollout]) -> FakeClock:
    clock = FakeClock()
    rollouts.resource = ScriptedSource(clock, reads=[first], streams=[list(then)])  # type: ignore[assignment,list-item]
    rollouts.clock = clock
    return clock


def test_progress_deadline_without_abort_is_waited_through_until_paused(
    rollouts: Rollouts,
) -> None:
    scripted(
        rollouts,
        rollout(),
        (10.0, rollout(degraded=DEADLINE)),
        (7.0, rollout()),
        (1.0, rollout(paused=True)),
    )
    waited = rollouts.waited_for_phase("r", Phase.PAUSED)
    assert waited.excursions == (Excursion(f"Degraded ({DEADLINE})", started=10.0, seconds=7.0),)


def test_progress_deadline_with_progress_deadline_abort_fails_fast(rollouts: Rollouts) -> None:
    scripted(
        rollouts,
        rollout(progressDeadlineAbort=True),
        (10.0, rollout(degraded=DEADLINE, progressDeadlineAbort=True)),
        (1.0, rollout(paused=True, progressDeadlineAbort=True)),
    )
    with pytest.raises(RolloutFailed) as caught:
        rollouts.wait_for_phase("r", Phase.PAUSED)
    assert caught.value.reason == f"the rollout is Degraded: {DEADLINE}"
    assert caught.value.elapsed == pytest.approx(10.0)


@pytest.mark.parametrize(
    "message",
    [
        "RolloutAborted: Rollout aborted update to revision 3",
        'InvalidSpec: The Rollout "r" is invalid: spec.strategy.blueGreen.activeService: '
        'Invalid value: "a": must be different from previewService',
    ],
)
def test_aborted_and_invalid_spec_stay_final_even_after_an_excursion(
    rollouts: Rollouts, message: str
) -> None:
    scripted(
        rollouts,
        rollout(),
        (10.0, rollout(degraded=DEADLINE)),
        (5.0, rollout(degraded=message)),
        (1.0, rollout(paused=True)),
    )
    with pytest.raises(RolloutFailed) as caught:
        rollouts.wait_for_phase("r", Phase.PAUSED)
    assert caught.value.reason == f"the rollout is Degraded: {message}"
    assert caught.value.excursions == (
        Excursion(f"Degraded ({DEADLINE})", started=10.0, seconds=5.0),
    )
    assert f"waited through: at 10.0s for 5.0s: Degraded ({DEADLINE})" in str(caught.value)


def test_waiting_for_degraded_records_no_excursion(rollouts: Rollouts) -> None:
    scripted(rollouts, rollout(), (10.0, rollout(degraded=DEADLINE)))
    waited = rollouts.waited_for_phase("r", Phase.DEGRADED)
    assert (waited.value.status_message, waited.excursions) == (DEADLINE, ())
