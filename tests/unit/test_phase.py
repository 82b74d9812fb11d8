"""Phase computation, rule by rule, as the plugin's GetRolloutPhase and the controller's
CalculateRolloutPhase order them (utils/rollout/rolloututil.go at the pinned release)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.errors import ConfigError
from harness.kube import rollout_from
from harness.rollouts import Phase, calculate_phase, phase_of


def rollout(
    *, spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None, **meta: Any
) -> dict[str, Any]:
    """A settled blue-green Rollout at generation 2, overridden per test."""
    base_spec: dict[str, Any] = {
        "replicas": 2,
        "strategy": {"blueGreen": {"activeService": "a", "previewService": "p"}},
        "template": {"spec": {"containers": [{"name": "app", "image": "img:1"}]}},
    }
    base_status: dict[str, Any] = {
        "observedGeneration": "2",
        "currentPodHash": "h2",
        "stableRS": "h2",
        "updatedReplicas": 2,
        "availableReplicas": 2,
        "blueGreen": {"activeSelector": "h2", "previewSelector": "h2"},
    }
    base_spec.update(spec or {})
    base_status.update(status or {})
    return {
        "metadata": {"name": "r", "namespace": "demo", "generation": 2, **meta},
        "spec": base_spec,
        "status": base_status,
    }


def calc(obj: dict[str, Any]) -> tuple[Phase, str]:
    return calculate_phase(rollout_from(obj))


def test_unobserved_generation_is_progressing_whatever_the_controller_said() -> None:
    obj = rollout(status={"observedGeneration": "1", "phase": "Healthy"})
    assert phase_of(rollout_from(obj)) == (
        Phase.PROGRESSING,
        "waiting for rollout spec update to be observed",
    )


def test_non_numeric_observed_generation_counts_as_observed() -> None:
    obj = rollout(status={"observedGeneration": "6d4f8b9c", "phase": "Healthy"})
    assert phase_of(rollout_from(obj))[0] is Phase.HEALTHY


def test_controller_pause_without_pause_conditions_is_unpausing() -> None:
    obj = rollout(status={"controllerPause": True, "phase": "Paused"})
    assert phase_of(rollout_from(obj)) == (Phase.PROGRESSING, "waiting for rollout to unpause")


def test_controller_pause_with_a_condition_uses_the_controllers_phase() -> None:
    obj = rollout(
        status={
            "controllerPause": True,
            "pauseConditions": [{"reason": "BlueGreenPause"}],
            "phase": "Paused",
            "message": "BlueGreenPause",
        }
    )
    assert phase_of(rollout_from(obj)) == (Phase.PAUSED, "BlueGreenPause")


def test_workload_ref_generation_not_observed_is_progressing() -> None:
    obj = rollout(
        spec={"templateResolvedFromRef": True},
        status={"workloadObservedGeneration": "3", "phase": "Healthy"},
        annotations={"rollout.argoproj.io/workload-generation": "4"},
    )
    assert phase_of(rollout_from(obj))[0] is Phase.PROGRESSING


def test_controller_phase_and_message_are_used_when_present() -> None:
    obj = rollout(status={"phase": "Degraded", "message": "RolloutAborted: Rollout aborted"})
    assert phase_of(rollout_from(obj)) == (Phase.DEGRADED, "RolloutAborted: Rollout aborted")


def test_without_controller_phase_it_is_calculated() -> None:
    assert phase_of(rollout_from(rollout())) == (Phase.HEALTHY, "")


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"type": "InvalidSpec", "message": "bad"}, "InvalidSpec: bad"),
        ({"type": "Progressing", "reason": "RolloutAborted", "message": "m"}, "RolloutAborted: m"),
        (
            {"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "m"},
            "ProgressDeadlineExceeded: m",
        ),
    ],
)
def test_degraded_conditions(condition: dict[str, str], expected: str) -> None:
    obj = rollout(status={"conditions": [condition]}, spec={"paused": True})
    assert calc(obj) == (Phase.DEGRADED, expected)


def test_manual_pause_wins_over_pause_conditions() -> None:
    obj = rollout(spec={"paused": True}, status={"pauseConditions": [{"reason": "X"}]})
    assert calc(obj) == (Phase.PAUSED, "manually paused")


def test_pause_condition_reason_is_the_message() -> None:
    obj = rollout(status={"pauseConditions": [{"reason": "InconclusiveAnalysisRun"}]})
    assert calc(obj) == (Phase.PAUSED, "InconclusiveAnalysisRun")


def test_pending_restart_is_progressing() -> None:
    obj = rollout(spec={"restartAt": "2026-11-24T00:00:00Z"})
    assert calc(obj) == (Phase.PROGRESSING, "rollout is restarting")
    done = rollout(
        spec={"restartAt": "2026-11-24T00:00:00Z"}, status={"restartedAt": "2026-11-24T00:00:00Z"}
    )
    assert calc(done)[0] is Phase.HEALTHY


def test_replicas_not_updated_then_not_available() -> None:
    assert calc(rollout(status={"updatedReplicas": 1})) == (
        Phase.PROGRESSING,
        "more replicas need to be updated",
    )
    assert calc(rollout(status={"availableReplicas": 1})) == (
        Phase.PROGRESSING,
        "updated replicas are still becoming available",
    )


def test_active_cutover_pending() -> None:
    obj = rollout(status={"blueGreen": {"activeSelector": "h1", "previewSelector": "h2"}})
    assert calc(obj) == (Phase.PROGRESSING, "active service cutover pending")


def test_not_yet_stable_waits_for_post_promotion_analysis_or_verification() -> None:
    verification = rollout(status={"stableRS": "h1"})
    assert calc(verification) == (
        Phase.PROGRESSING,
        "waiting for post-promotion verification to complete",
    )
    with_analysis = rollout(
        spec={
            "strategy": {
                "blueGreen": {
                    "activeService": "a",
                    "postPromotionAnalysis": {"templates": [{"templateName": "t"}]},
                }
            }
        },
        status={"stableRS": "h1"},
    )
    assert calc(with_analysis) == (Phase.PROGRESSING, "waiting for analysis to complete")


def test_phase_words_parse_and_a_bad_word_names_the_valid_ones() -> None:
    assert Phase.parse("Paused") is Phase.PAUSED
    with pytest.raises(ConfigError) as caught:
        Phase.parse("Paws")
    assert str(caught.value) == (
        'unknown phase "Paws"; expected one of Healthy, Progressing, Paused, Degraded.'
    )
    assert not isinstance(caught.value, ValueError)


def test_wait_for_phase_does_not_give_up_on_a_service_the_controller_has_not_seen_yet() -> None:
    """InvalidSpec "service ... not found" right after an apply is transient (informer lag);
    other Degraded states still end a wait at once. Checked through the wait's own predicate."""
    from harness.rollouts import _gives_up_on

    transient = rollout(
        status={
            "phase": "Degraded",
            "message": 'InvalidSpec: The Rollout "b" is invalid: service "b-active" not found',
        }
    )
    aborted = rollout(
        status={"phase": "Degraded", "message": "RolloutAborted: aborted", "abort": True}
    )
    assert _gives_up_on(Phase.HEALTHY, rollout_from(transient)) is None
    assert "RolloutAborted" in str(_gives_up_on(Phase.HEALTHY, rollout_from(aborted)))
    assert _gives_up_on(Phase.DEGRADED, rollout_from(aborted)) is None
