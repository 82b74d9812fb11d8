"""Steps about the blue-green fields, on a Rollout the runbook defines (harness/bluegreen.py).

``Given a blue-green Rollout "web" on version "1.0.0" with`` and a ``| field | value |`` table
deploys it into a namespace of its own and becomes the ``rollouts`` of the scenario, so the
Rollout steps (``becomes Paused``, ``has revision 1 on active and 2 on preview``, ``I promote``)
work on it unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_bdd import given, parsers, then, when

from harness import bluegreen
from harness.bluegreen import BlueGreen, Scratch, schedulable_nodes
from harness.rollouts import Rollouts
from harness.settings import Settings
from harness.targets import target_for


@pytest.fixture
def scratch(bgh_settings: Settings, request: pytest.FixtureRequest) -> Iterator[Scratch]:
    """A namespace of its own for the scenario's Rollout, deleted afterwards without waiting;
    only on a cluster the harness owns (local, kind), never on someone's existing one, and for
    an ``@analysis`` scenario only where the target names a Prometheus."""
    target = target_for(bgh_settings)
    if not target.owns_cluster:
        pytest.skip(
            f"creates a namespace and a Rollout of its own; on {target.name} the cluster is "
            "not the harness's to change"
        )
    if request.node.get_closest_marker("analysis") is not None and target.prometheus_url is None:
        pytest.skip(
            f"@analysis: its AnalysisTemplate measures through Prometheus, and the {target.name} "
            "target names none (BGH_PROMETHEUS_URL)"
        )
    if request.node.get_closest_marker("spread") is not None:
        nodes = schedulable_nodes(target.kube())
        if len(nodes) < 2:
            pytest.skip(
                f"@spread: keeping blue and green on different nodes needs at least two "
                f"schedulable nodes; the {target.name} cluster has {len(nodes)}: "
                f"{', '.join(nodes) or 'none'}"
            )
    if request.node.get_closest_marker("crash") is not None and not target.crashes_pods:
        pytest.skip(
            f"@crash: crashes a pod's process, and the harness reaches none on the {target.name} "
            "target (it does on the local and kind targets)"
        )
    namespace = Scratch(target)
    yield namespace
    namespace.close()


@given(
    parsers.parse('a blue-green Rollout "{rollout}" on version "{version}" with'),
    target_fixture="rollouts",
)
def _(scratch: Scratch, rollout: str, version: str, datatable: list[list[str]]) -> Rollouts:
    return scratch.deploy(BlueGreen.from_table(rollout, version, datatable))


# Quoted values never contain a quote, so this does not also match the longer sentences below.
@when(parsers.re(r'I release version "(?P<version>[^"]+)" of the Rollout "(?P<rollout>[^"]+)"'))
def _(rollouts: Rollouts, rollout: str, version: str) -> None:
    bluegreen.release(rollouts, rollout, version)


@when(
    parsers.parse('I release version "{version}" of the Rollout "{rollout}" on pods no node runs')
)
def _(rollouts: Rollouts, rollout: str, version: str) -> None:
    bluegreen.release(rollouts, rollout, version, schedulable=False)


@when(
    parsers.parse(
        'I release version "{version}" of the Rollout "{rollout}" with the greeting "{greeting}"'
    )
)
def _(rollouts: Rollouts, rollout: str, version: str, greeting: str) -> None:
    bluegreen.release(rollouts, rollout, version, greeting=greeting)


@then(parsers.parse('the rollout "{rollout}" promotes itself once its autoPromotionSeconds pass'))
def _(rollouts: Rollouts, rollout: str) -> None:
    promotion = bluegreen.wait_for_auto_promotion(rollouts, rollout)
    assert promotion.after >= promotion.delay_seconds


@then(parsers.parse('the rollout "{rollout}" aborts by itself'))
def _(rollouts: Rollouts, rollout: str) -> None:
    bluegreen.wait_for_abort(rollouts, rollout)


@when(parsers.parse('a pod of revision {revision:d} of "{rollout}" crashes'))
def _(scratch: Scratch, rollouts: Rollouts, rollout: str, revision: int) -> None:
    bluegreen.crash_pod(scratch.target, rollouts, rollout, revision)


@when("every node is cordoned")
def _(scratch: Scratch) -> None:
    scratch.cordon_nodes()


@when("every node is uncordoned")
def _(scratch: Scratch) -> None:
    scratch.uncordon_nodes()


@then(parsers.parse('the rollout "{rollout}" passes its scaleUpPreviewCheckPoint'))
def _(rollouts: Rollouts, rollout: str) -> None:
    bluegreen.wait_for_scale_up_preview_checkpoint(rollouts, rollout)


@then(
    parsers.parse(
        'the rollout "{rollout}" starts revision {revision:d} with its '
        "scaleUpPreviewCheckPoint reset"
    )
)
def _(rollouts: Rollouts, rollout: str, revision: int) -> None:
    started = bluegreen.wait_for_current_revision(rollouts, rollout, revision)
    assert bluegreen.scale_up_preview_checkpoint(started) is False


@then(parsers.parse('revision {revision:d} of "{rollout}" is short of an available pod'))
def _(rollouts: Rollouts, rollout: str, revision: int) -> None:
    bluegreen.wait_for_availability(rollouts, rollout, revision, full=False)


@then(parsers.parse('revision {revision:d} of "{rollout}" is fully available again'))
def _(rollouts: Rollouts, rollout: str, revision: int) -> None:
    bluegreen.wait_for_availability(rollouts, rollout, revision, full=True)


@then(
    parsers.re(
        r'revision (?P<revision>\d+) of "(?P<rollout>[^"]+)" has (?P<count>\d+) ready pods?'
    ),
    converters={"revision": int, "count": int},
)
def _(rollouts: Rollouts, rollout: str, revision: int, count: int) -> None:
    assert bluegreen.ready_counts(rollouts, rollout, [revision]) == {revision: count}


@then(
    parsers.parse(
        'the active Service of "{rollout}" switches to revision {revision:d} at full size'
    )
)
def _(rollouts: Rollouts, rollout: str, revision: int) -> None:
    switched = rollouts.wait_for_active_revision(rollout, revision)
    assert switched.available_replicas == switched.spec_replicas


@then(parsers.parse('revision {revision:d} of "{rollout}" is never scaled down'))
def _(rollouts: Rollouts, rollout: str, revision: int) -> None:
    assert bluegreen.keeps_pods(rollouts, rollout, revision)


@then(
    parsers.parse(
        'revision {revision:d} of "{rollout}" is scaled down once its '
        "abortScaleDownDelaySeconds pass"
    )
)
def _(rollouts: Rollouts, rollout: str, revision: int) -> None:
    scale_down = bluegreen.wait_for_abort_scale_down(rollouts, rollout, revision)
    assert scale_down.after >= scale_down.delay_seconds


@then(
    parsers.parse(
        'the pods of revision {revision:d} of "{rollout}" become labelled "{labels:Labels}"',
        extra_types={"Labels": bluegreen.parse_labels},
    )
)
def _(rollouts: Rollouts, rollout: str, revision: int, labels: dict[str, str]) -> None:
    bluegreen.wait_for_pod_labels(rollouts, rollout, revision, labels)


@then(parsers.parse('the active Service of "{rollout}" stays on revision {revision:d}'))
def _(rollouts: Rollouts, rollout: str, revision: int) -> None:
    assert rollouts.revision_mismatches(rollout, active=revision) == []


@then(parsers.parse('the stable revision of "{rollout}" is {revision:d}'))
def _(rollouts: Rollouts, rollout: str, revision: int) -> None:
    assert rollouts.stable_revision(rollout) == revision


@then(
    parsers.parse(
        'no node runs pods of both revision {first:d} and revision {second:d} of "{rollout}"'
    )
)
def _(rollouts: Rollouts, rollout: str, first: int, second: int) -> None:
    assert bluegreen.shared_nodes(rollouts, rollout, first, second) == set()


@then(
    parsers.parse(
        'the pods of revision {revision:d} of "{rollout}" are required to keep off the nodes '
        "of the stable ReplicaSet"
    )
)
def _(rollouts: Rollouts, rollout: str, revision: int) -> None:
    stable = rollouts.read(rollout).stable_hash
    assert bluegreen.anti_affinity_to(rollouts, rollout, revision) == [stable]


@when(parsers.parse('I set {field} of the Rollout "{rollout}" to "{value}"'))
def _(scratch: Scratch, rollout: str, field: str, value: str) -> None:
    scratch.set_field(rollout, field, value)


@then(parsers.parse('revision {revision:d} of "{rollout}" gets a scale-down deadline'))
def _(rollouts: Rollouts, rollout: str, revision: int) -> None:
    bluegreen.wait_for_scale_down_deadline(rollouts, rollout, revision)


@then(parsers.parse('the rollout "{rollout}" waits on preview again, unpromoted'))
def _(rollouts: Rollouts, rollout: str) -> None:
    bluegreen.wait_for_pause_on_preview(rollouts, rollout)
