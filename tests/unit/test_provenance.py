"""Provenance and the isolation invariants over recorded answers and objects.

A ``History`` is fed Rollouts, Services, ReplicaSets and Pods in the shapes the API server sends
(the fields Argo Rollouts and the chart set), each stamped with the second it was seen; answers
are gateway A's ``/versions`` bodies. No cluster: the same judging runs live in
tests/cluster/test_provenance.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.errors import ConfigError
from harness.kube import POD, REPLICA_SET, ROLLOUT, SERVICE
from harness.probes import Answer, Side, answer_from
from harness.provenance import History, Role, judge, percentile, resolve
from harness.timeline import timeline_svg

NS = "demo"
KEYS = {"gateway-a": "a", "service-b": "b", "service-c": "c"}


def rollout(
    name: str,
    active: str,
    preview: str,
    *,
    version: int = 0,
    paused: bool = False,
    stable: str = "",
    scale_down_delay: int | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"stableRS": stable or active}
    if paused:
        status["pauseConditions"] = [
            {"reason": "BlueGreenPause", "startTime": "2026-12-03T10:00:00Z"}
        ]
    blue_green: dict[str, Any] = {"activeService": name, "previewService": f"{name}-preview"}
    if scale_down_delay is not None:
        blue_green["scaleDownDelaySeconds"] = scale_down_delay
    return {
        "metadata": {"name": name, "namespace": NS, "resourceVersion": str(version)},
        "spec": {"strategy": {"blueGreen": blue_green}},
        "status": {**status, "blueGreen": {"activeSelector": active, "previewSelector": preview}},
    }


def service(name: str, pod_hash: str, *, version: int = 0) -> dict[str, Any]:
    app = name.removesuffix("-preview")
    return {
        "metadata": {"name": name, "namespace": NS, "resourceVersion": str(version)},
        "spec": {"selector": {"app": app, "rollouts-pod-template-hash": pod_hash}},
    }


def replica_set(owner: str, pod_hash: str, revision: int, root: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"{owner}-{pod_hash}",
            "namespace": NS,
            "labels": {"rollouts-pod-template-hash": pod_hash},
            "annotations": {"rollout.argoproj.io/revision": str(revision)},
            "ownerReferences": [{"kind": "Rollout", "name": owner}],
        },
        "spec": {"template": {"metadata": {"labels": {"app": owner, "root-version": root}}}},
    }


def pod(owner: str, pod_hash: str, index: int = 0) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"{owner}-{pod_hash}-{index}",
            "namespace": NS,
            "labels": {"app": owner, "rollouts-pod-template-hash": pod_hash},
        }
    }


def set_sides(history: History, name: str, active: str, preview: str, *, at: float) -> None:
    """The controller's switch as the watches see it: the Services, then the Rollout status."""
    history.observe(SERVICE, service(name, active), at=at)
    history.observe(SERVICE, service(f"{name}-preview", preview), at=at)
    history.observe(ROLLOUT, rollout(name, active, preview), at=at)


def add_replica_set(history: History, owner: str, pod_hash: str, revision: int, root: str) -> None:
    history.observe(REPLICA_SET, replica_set(owner, pod_hash, revision, root), at=0.0)
    for index in (0, 1):
        history.observe(POD, pod(owner, pod_hash, index), at=0.0)


def at_rest() -> History:
    """A, B and C Healthy on revision 1, root version v2."""
    history = History(NS)
    for name in KEYS:
        history.observe(ROLLOUT, rollout(name, "", ""), at=0.0)
        add_replica_set(history, name, f"{name[-1]}1", 1, "v2")
        set_sides(history, name, f"{name[-1]}1", f"{name[-1]}1", at=0.0)
    return history


def b_promoted() -> History:
    """B's revision 2 on preview from second 10, switched to active at second 20."""
    history = at_rest()
    add_replica_set(history, "service-b", "b2", 2, "v3")
    set_sides(history, "service-b", "b1", "b2", at=10.0)
    set_sides(history, "service-b", "b2", "b2", at=20.0)
    return history


def answer(
    side: Side,
    at: float,
    *,
    opened: dict[str, float] | None = None,
    caller: int = 0,
    **hashes: str,
) -> Answer:
    """Gateway A's answer naming pod 0 of each ReplicaSet given (a="a1", b="b2", ...), or pod
    ``caller`` of gateway A's; ``opened``: when A dialled the connection each upstream (b, c)
    answered on, as A names it."""
    body: dict[str, Any] = {"pods": {}}
    for service_name, key in KEYS.items():
        found = hashes.get(key, f"{service_name[-1]}1")
        body[key] = "1.0.0"
        body["pods"][key] = f"{service_name}-{found}-{caller if key == 'a' else 0}"
    if opened:
        body["conns"] = {
            key: {"id": f"10.0.0.{caller}:{40000 + round(t * 10)}", "opened": t}
            for key, t in opened.items()
        }
    return answer_from(side, "http://gateway", 200, body, 0.01, at)


def test_each_hop_is_resolved_to_its_replica_set_and_role_at_the_answer_time() -> None:
    history = at_rest()
    add_replica_set(history, "service-b", "b2", 2, "v2")
    set_sides(history, "service-b", "b1", "b2", at=10.0)
    set_sides(history, "service-b", "b2", "b2", at=20.0)

    before = resolve(answer(Side.ACTIVE, 5.0, b="b2"), history)
    waiting = resolve(answer(Side.ACTIVE, 15.0, b="b2"), history)
    old_after = resolve(answer(Side.ACTIVE, 25.0, b="b1"), history)

    hop = {h.service: h for h in waiting.hops}["service-b"]
    assert hop.origin is not None
    assert (hop.origin.replica_set, hop.origin.pod_template_hash, hop.origin.revision) == (
        "service-b-b2",
        "b2",
        2,
    )
    assert hop.role is Role.PREVIEW
    assert "activeSelector=b1 previewSelector=b2" in hop.evidence
    assert {h.service: h.role for h in before.hops}["service-b"] is Role.STALE
    assert {h.service: h.role for h in old_after.hops}["service-b"] is Role.STALE
    assert {h.service: h.role for h in old_after.hops}["gateway-a"] is Role.ACTIVE


def test_a_user_answer_from_a_preview_only_replica_set_breaks_invariant_1_with_its_chain() -> None:
    history = at_rest()
    add_replica_set(history, "service-b", "b2", 2, "v2")
    set_sides(history, "service-b", "b1", "b2", at=10.0)

    verdict = judge([answer(Side.ACTIVE, 12.0), answer(Side.ACTIVE, 13.0, b="b2")], history)

    (violation,) = verdict.violations
    assert violation.invariant == 1
    text = violation.describe()
    assert "preview-only" in text
    assert "service-b-b2-0 in ReplicaSet service-b-b2 (rev 2): preview" in text
    assert "Rollout service-b: activeSelector=b1 previewSelector=b2" in text
    assert verdict.checked(Side.ACTIVE) == 2


def test_the_old_active_is_tolerated_on_open_connections_for_the_grace_then_is_invariant_3() -> (
    None
):
    history = b_promoted()

    verdict = judge(
        [
            answer(Side.ACTIVE, 21.0, b="b1"),  # a connection opened before the switch
            answer(Side.ACTIVE, 25.0, b="b1"),  # five seconds on: the old active, wrongly
        ],
        history,
        grace=2.0,
    )

    assert [v.invariant for v in verdict.violations] == [3]
    assert "neither active nor preview" in verdict.violations[0].why
    assert len(verdict.drained) == 1
    assert verdict.drained_late == pytest.approx(1.0)


def test_the_old_active_on_a_connection_opened_before_the_switch_is_drained_past_the_grace() -> (
    None
):
    """Kubernetes routes a connection when it is opened: one opened before the switch reaches
    the old active for as long as it is used, and gateway A says when it opened it."""
    history = b_promoted()

    verdict = judge([answer(Side.ACTIVE, 25.0, b="b1", opened={"b": 19.5})], history, grace=2.0)

    assert [v.describe() for v in verdict.violations] == []
    assert len(verdict.drained) == 1
    assert verdict.drained_late == pytest.approx(5.0)
    assert "drained on connections opened before the switch: 1" in verdict.summary()


def test_a_new_connection_to_the_old_active_is_tolerated_only_until_its_node_routes_new_ones() -> (
    None
):
    """kube-proxy routes by the endpoints it last programmed, a moment after the selector
    changed: until a gateway pod's first connection reaches the new ReplicaSet, new ones may
    still reach the old active; after it, one that does was not routed by the switch."""
    history = b_promoted()

    verdict = judge(
        [
            answer(Side.ACTIVE, 20.6, b="b1", opened={"b": 20.5}),  # the switch propagating
            answer(Side.ACTIVE, 21.2, b="b2", opened={"b": 21.1}),  # pod 0 routed to b2
            answer(Side.ACTIVE, 21.4, b="b1", opened={"b": 21.3}, caller=1),  # pod 1 not yet
            answer(Side.ACTIVE, 21.6, b="b1", opened={"b": 21.5}),  # pod 0, new, to b1
        ],
        history,
        grace=2.0,
    )

    assert [p.answer.at for p in verdict.propagated] == [20.6, 21.4]
    assert verdict.propagated_late == pytest.approx(1.4)
    (violation,) = verdict.violations
    assert violation.invariant == 3
    assert violation.provenance.answer.at == 21.6
    assert "on connection 10.0.0.0:40215 opened 1.50s after the switch" in violation.why
    assert "gateway-a-a1-0 had already been routed to the new ReplicaSet b2" in violation.why


def test_the_old_active_past_the_rollouts_scale_down_delay_is_invariant_3() -> None:
    history = b_promoted()
    history.observe(ROLLOUT, rollout("service-b", "b2", "b2", scale_down_delay=3), at=20.0)

    verdict = judge([answer(Side.ACTIVE, 24.0, b="b1", opened={"b": 19.5})], history)

    (violation,) = verdict.violations
    assert "past scaleDownDelaySeconds (3s)" in violation.why


def releasing_everything() -> History:
    """A release (root version v3) under way: every Rollout has a preview carrying v3."""
    history = at_rest()
    for name in KEYS:
        add_replica_set(history, name, f"{name[-1]}2", 2, "v3")
        set_sides(history, name, f"{name[-1]}1", f"{name[-1]}2", at=10.0)
    return history


def test_a_release_chain_reaches_the_previews_of_the_release_and_nothing_else() -> None:
    history = releasing_everything()

    verdict = judge(
        [
            answer(Side.PREVIEW, 12.0, a="a2", b="b2", c="c2"),
            answer(Side.PREVIEW, 13.0, a="a2", b="b1", c="c2"),  # preview A reached active B
            answer(Side.ACTIVE, 14.0),
        ],
        history,
    )

    (violation,) = verdict.violations
    assert violation.invariant == 2
    assert "service-b from b1, expected b2" in violation.why
    assert verdict.checked(Side.PREVIEW) == 2


def test_an_invariant_the_cluster_cannot_be_judged_on_is_named_never_passed() -> None:
    history = releasing_everything()
    verdict = judge(
        [
            # No mesh: preview A's pods call B's and C's active Services like everyone else.
            answer(Side.PREVIEW, 12.0, a="a2", b="b1", c="c1"),
            answer(Side.ACTIVE, 13.0, a="a2"),  # a user on preview A breaks invariant 1
        ],
        history,
    )
    assert sorted(v.invariant for v in verdict.violations) == [1, 2]

    without_mesh = verdict.without({2: "no mesh routing: no istiod"})

    assert [v.invariant for v in without_mesh.violations] == [1]  # the others still judged
    assert without_mesh.judged(1) and not without_mesh.judged(2)
    assert "invariant 2 not judged: no mesh routing: no istiod" in without_mesh.summary()
    assert verdict.without({}) is verdict and verdict.judged(2)


def test_a_preview_chain_with_each_hop_right_a_moment_ago_is_drained_not_a_violation() -> None:
    history = at_rest()
    # A's preview is up at second 10; B's preview at 11, C's at 11.5 (each releasing in turn).
    for name in KEYS:
        add_replica_set(history, name, f"{name[-1]}2", 2, "v3")
    set_sides(history, "gateway-a", "a1", "a2", at=10.0)
    set_sides(history, "service-b", "b1", "b2", at=11.0)
    set_sides(history, "service-c", "c1", "c2", at=11.5)

    verdict = judge(
        [
            # B on a connection A opened before B's switch, C after C's: never one moment's
            # chain, but each hop was right within the grace.
            answer(Side.PREVIEW, 11.8, a="a2", b="b1", c="c2"),
            # B still on active 3 s after its switch: past the grace.
            answer(Side.PREVIEW, 14.5, a="a2", b="b1", c="c2"),
        ],
        history,
    )

    assert [p.answer.at for p in verdict.drained] == [11.8]
    assert verdict.drained_late == pytest.approx(0.8)
    assert [(v.invariant, v.provenance.answer.at) for v in verdict.violations] == [(2, 14.5)]


def test_a_service_released_alone_with_set_image_is_in_no_preview_chain() -> None:
    history = at_rest()
    # set image on B alone: same root version, gateway A has no preview of its own.
    add_replica_set(history, "service-b", "b2", 2, "v2")
    set_sides(history, "service-b", "b1", "b2", at=10.0)

    verdict = judge(
        [
            answer(Side.PREVIEW, 12.0),  # preview A (= active A) reaches active B: coherent
            answer(Side.PREVIEW, 13.0, b="b2"),  # the hazard: reached through no release
        ],
        history,
    )

    assert [(v.invariant, v.provenance.answer.at) for v in verdict.violations] == [(2, 13.0)]


def test_a_pod_no_watch_saw_cannot_be_proven_and_is_a_violation() -> None:
    history = at_rest()
    body = {"a": "1.0.0", "b": "1.0.0", "pods": {"a": "gateway-a-a1-0", "b": "service-b-zz-9"}}

    verdict = judge([answer_from(Side.ACTIVE, "http://gateway", 200, body, 0.01, 5.0)], history)

    (violation,) = verdict.violations
    assert "no watch ever saw" in violation.why
    assert "service-b-zz-9" in violation.why


def test_answers_without_hops_are_counted_but_not_judged() -> None:
    history = at_rest()
    failed = Answer(Side.ACTIVE, "http://gateway", None, {}, {}, {}, 0.0, 5.0, error="refused")

    verdict = judge([failed], history)

    assert verdict.checked(Side.ACTIVE) == 0
    assert verdict.counts[0].unanswered == 1
    assert verdict.violations == ()


def test_an_active_service_switched_by_hand_during_the_pause_is_still_the_preview() -> None:
    """What the controller does after `kubectl patch service service-b` during the pause: it
    reads the selector back into its status and takes the ReplicaSet as active and stable."""
    history = at_rest()
    add_replica_set(history, "service-b", "b2", 2, "v2")
    set_sides(history, "service-b", "b1", "b2", at=10.0)
    history.observe(ROLLOUT, rollout("service-b", "b1", "b2", version=100, paused=True), at=10.0)
    history.observe(SERVICE, service("service-b", "b2", version=101), at=11.0)  # by hand
    history.observe(ROLLOUT, rollout("service-b", "b2", "b2", version=102), at=11.01)

    verdict = judge([answer(Side.ACTIVE, 12.0, b="b2")], history)

    (violation,) = verdict.violations
    assert violation.invariant == 1
    assert "switched b1 -> b2 while the Rollout was paused" in violation.describe()
    assert verdict.lags == ()  # not the controller's switch: no figure from it


def test_a_switch_after_promote_is_the_controllers() -> None:
    history = at_rest()
    add_replica_set(history, "service-b", "b2", 2, "v2")
    set_sides(history, "service-b", "b1", "b2", at=10.0)
    history.observe(ROLLOUT, rollout("service-b", "b1", "b2", version=100, paused=True), at=10.0)
    # promote clears the pause; the controller switches; the Rollout's watch event comes last.
    history.observe(SERVICE, service("service-b", "b2", version=102), at=20.0)
    history.observe(ROLLOUT, rollout("service-b", "b1", "b2", version=101), at=20.01)
    history.observe(ROLLOUT, rollout("service-b", "b2", "b2", version=103), at=20.02)

    verdict = judge([answer(Side.ACTIVE, 20.5, b="b2")], history)

    assert verdict.violations == ()
    assert len(verdict.lags) == 1


def promoted_with_a_slow_status() -> History:
    """B promoted at second 20 as Argo Rollouts does it: the controller patches the active
    Service, then relabels pods, and writes status.blueGreen.activeSelector a second later."""
    history = at_rest()
    add_replica_set(history, "service-b", "b2", 2, "v2")
    set_sides(history, "service-b", "b1", "b2", at=10.0)
    history.observe(ROLLOUT, rollout("service-b", "b1", "b2", version=100, paused=True), at=10.0)
    history.observe(ROLLOUT, rollout("service-b", "b1", "b2", version=101), at=19.9)  # promote
    history.observe(SERVICE, service("service-b", "b2", version=102), at=20.0)
    history.observe(ROLLOUT, rollout("service-b", "b2", "b2", version=103), at=21.0)
    return history


def test_the_controllers_switch_is_active_before_its_status_says_so() -> None:
    history = promoted_with_a_slow_status()

    verdict = judge(
        [
            answer(Side.ACTIVE, 20.2, b="b2"),  # the status still names b1 until 21.0
            answer(Side.ACTIVE, 20.45, b="b2"),
            answer(Side.PREVIEW, 20.3, b="b2"),  # B released alone: testers get B's active
            answer(Side.ACTIVE, 20.8, b="b1"),  # an open connection to the old active
        ],
        history,
    )

    assert [v.describe() for v in verdict.violations] == []
    (drained,) = verdict.drained
    assert drained.answer.at == 20.8
    assert verdict.drained_late == pytest.approx(0.8)  # counted from the Service's switch
    (hop,) = [
        h
        for h in resolve(answer(Side.ACTIVE, 20.2, b="b2"), history).hops
        if h.service == "service-b"
    ]
    assert hop.role is Role.ACTIVE
    assert "switched by the controller" in hop.evidence


def test_the_controllers_switch_still_leaves_the_preview_off_the_users_path_before_it() -> None:
    history = promoted_with_a_slow_status()

    verdict = judge([answer(Side.ACTIVE, 18.0, b="b2")], history)

    assert [v.invariant for v in verdict.violations] == [1]


def test_a_switch_nobody_can_attribute_is_judged_by_the_status() -> None:
    """The recording began after the Rollout's last version before the switch: the Service
    alone does not make a ReplicaSet active."""
    history = at_rest()
    add_replica_set(history, "service-b", "b2", 2, "v2")
    history.observe(SERVICE, service("service-b", "b1", version=50), at=10.0)
    history.observe(ROLLOUT, rollout("service-b", "b1", "b2", version=300), at=10.0)
    history.observe(SERVICE, service("service-b", "b2", version=200), at=20.0)

    verdict = judge([answer(Side.ACTIVE, 22.0, b="b2")], history)

    assert [v.invariant for v in verdict.violations] == [1]
    assert "disagrees with the Rollout" in verdict.violations[0].describe()


def test_a_violation_shows_the_window_it_rests_on_not_only_the_request_start() -> None:
    """The data plane may route by a Service patch before the recorder's watch delivers it: an
    answer can start before the patch's moment and still reach the new ReplicaSet."""
    history = at_rest()
    add_replica_set(history, "service-b", "b2", 2, "v2")
    set_sides(history, "service-b", "b1", "b2", at=10.0)
    history.observe(ROLLOUT, rollout("service-b", "b1", "b2", version=100, paused=True), at=10.0)
    history.observe(SERVICE, service("service-b", "b2", version=101), at=11.2)  # by hand

    verdict = judge([answer(Side.ACTIVE, 11.0, b="b2")], history)

    (violation,) = verdict.violations
    assert violation.invariant == 1
    text = violation.describe()
    assert "[from 00:00:10.000Z] Rollout service-b: activeSelector=b1" in text
    assert "[from 00:00:11.200Z]" in text
    assert "while the Rollout was paused: not by Argo Rollouts" in text
    # the answer's own provenance stays as it was when the request started
    (start,) = [h for h in verdict.provenance[0].hops if h.service == "service-b"]
    assert "not by Argo Rollouts" not in start.evidence


def test_the_switch_lag_is_from_the_service_switch_to_the_first_user_answer_from_the_new_rs() -> (
    None
):
    history = b_promoted()

    verdict = judge(
        [
            answer(Side.ACTIVE, 19.9, b="b1"),
            answer(Side.ACTIVE, 20.1, b="b1"),
            answer(Side.ACTIVE, 20.29, b="b2"),  # ends 20.30
            answer(Side.ACTIVE, 20.5, b="b2"),
        ],
        history,
    )

    assert verdict.lags == pytest.approx((0.30,))
    assert [s.rollout for s in history.switches] == ["service-b"]


def test_percentiles_need_values_and_interpolate() -> None:
    assert percentile([1.0], 0.95) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0
    with pytest.raises(ConfigError, match="no values"):
        percentile([], 0.5)


def test_a_grace_shorter_than_the_tolerance_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"tolerance 1\.0s and grace 0\.5s"):
        judge([], History(NS), tolerance=1.0, grace=0.5)


def test_the_timeline_colours_each_replica_set_and_marks_the_switch_and_violations() -> None:
    history = b_promoted()
    verdict = judge(
        [
            answer(Side.ACTIVE, 15.0, b="b2"),  # a user on B's preview: flagged
            answer(Side.ACTIVE, 19.0),
            answer(Side.ACTIVE, 21.0, b="b2"),
            answer(Side.PREVIEW, 21.5, b="b2"),
        ],
        history,
    )

    svg = timeline_svg(verdict, history)

    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<rect") == 4 * 3 + 4  # a mark per hop, a key per ReplicaSet
    assert "service-b rev 2 (b2)" in svg and "service-b rev 1 (b1)" in svg
    assert "service-b switch" in svg
    assert svg.count("▼") == 1
