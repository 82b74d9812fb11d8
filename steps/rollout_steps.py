"""Steps about Rollouts: release, promote, abort, retry, undo, phases and revisions."""

from __future__ import annotations

import re

import pytest
from pytest_bdd import given, parsers, then, when

from harness.errors import ConfigError
from harness.release import Release, Releases, promote_release
from harness.rollouts import EVENT_SPAM_BURST, AnalysisPhase, Gate, Phase, Rollouts

PHASE = {"Phase": Phase.parse}


@given("the demo system is running")
def _(rollouts: Rollouts) -> None:
    rollouts.wait_for_every_phase(rollouts.names_to_check(), Phase.HEALTHY)


@when(
    parsers.parse('I release version "{version}" of "{service}"'),
    target_fixture="release",
)
def _(releases: Releases, service: str, version: str) -> Release:
    return releases.release(service, version)


@given(
    parsers.parse('version "{version}" of "{service}" is released and promoted'),
    target_fixture="release",
)
def _(releases: Releases, rollouts: Rollouts, service: str, version: str) -> Release:
    return releases.release_and_promote(rollouts, service, version)


@when(parsers.parse('I promote "{rollout}"'))
def _(rollouts: Rollouts, rollout: str) -> None:
    rollouts.promote(rollout)


@when(parsers.parse('I promote "{rollout}" fully'))
def _(rollouts: Rollouts, rollout: str) -> None:
    rollouts.promote(rollout, full=True)


@when("I promote the release")
def _(rollouts: Rollouts, release: Release) -> None:
    promote_release(rollouts, release.rollouts)


@when(parsers.parse('I abort "{rollout}"'))
def _(rollouts: Rollouts, rollout: str) -> None:
    rollouts.abort(rollout)


@when("I abort the release")
def _(rollouts: Rollouts, release: Release) -> None:
    rollouts.abort_each(release.rollouts)


@when(parsers.parse('I retry "{rollout}"'))
def _(rollouts: Rollouts, rollout: str) -> None:
    rollouts.retry(rollout)


@when("I retry the release")
def _(rollouts: Rollouts, release: Release) -> None:
    rollouts.retry_each(release.rollouts)


@when(parsers.parse('I set the image of "{rollout}" to version "{version}"'))
def _(rollouts: Rollouts, rollout: str, version: str) -> None:
    rollouts.set_image_version(rollout, version)


@when(parsers.parse('I undo "{rollout}"'))
def _(rollouts: Rollouts, rollout: str) -> None:
    rollouts.undo(rollout)


@when(parsers.parse('I undo "{rollout}" to revision {revision:d}'))
def _(rollouts: Rollouts, rollout: str, revision: int) -> None:
    rollouts.undo(rollout, to_revision=revision)


@then(parsers.parse('the rollout "{rollout}" becomes {phase:Phase}', extra_types=PHASE))
def _(rollouts: Rollouts, rollout: str, phase: Phase) -> None:
    rollouts.wait_for_phase(rollout, phase)


@then(parsers.parse("every rollout of the release becomes {phase:Phase}", extra_types=PHASE))
def _(rollouts: Rollouts, release: Release, phase: Phase) -> None:
    if phase is Phase.HEALTHY:
        # Settled, as `released and promoted` is: an undo that follows copies a template
        # without the previous side's ephemeral role.
        rollouts.wait_until_settled(release.rollouts)
    else:
        rollouts.wait_for_every_phase(release.rollouts, phase)


@then(
    parsers.parse(
        'the rollout "{rollout}" has revision {active:d} on active and {preview:d} on preview'
    )
)
def _(rollouts: Rollouts, rollout: str, active: int, preview: int) -> None:
    assert rollouts.wait_for_revisions(rollout, active=active, preview=preview) == []


@then(parsers.parse('the rollout "{rollout}" asks for version "{version}"'))
def _(rollouts: Rollouts, rollout: str, version: str) -> None:
    assert rollouts.version(rollout) == version


@then(parsers.parse('the events of "{rollout}" end with "{first}" then "{second}"'))
def _(rollouts: Rollouts, rollout: str, first: str, second: str) -> None:
    reasons = rollouts.event_reasons(rollout, only=(first, second))
    if reasons[-2:] != [first, second]:
        recorded = rollouts.events_recorded(rollout)
        if recorded >= EVENT_SPAM_BURST:
            pytest.skip(
                f"the event order of {rollout} cannot be checked: the controller has recorded "
                f"{recorded} events for it, and client-go's event recorder drops an object's "
                f"events after {EVENT_SPAM_BURST} (then keeps one per 5 minutes); seen since "
                f"the scenario started: {reasons}. A fresh namespace (local or kind) checks it."
            )
    assert reasons[-2:] == [first, second], f"events of {rollout} this scenario: {reasons}"


@then(parsers.parse('the AnalysisRuns of "{rollout}" are "{first}" then "{second}"'))
def _(rollouts: Rollouts, rollout: str, first: str, second: str) -> None:
    assert [run.phase for run in rollouts.analysis_runs(rollout)] == [first, second]


@then("every rollout is Healthy")
def _(rollouts: Rollouts) -> None:
    assert rollouts.not_in_phase(Phase.HEALTHY) == {}


@then("every rollout's status selectors agree with its Services")
def _(rollouts: Rollouts) -> None:
    assert rollouts.selector_disagreements() == []


@given("the pre-promotion analysis is on")
def _(releases: Releases) -> None:
    releases.turn_on_pre_promotion_analysis()


@given(parsers.parse('the post-promotion analysis "{template}" is on'))
def _(releases: Releases, template: str) -> None:
    releases.turn_on_post_promotion_analysis(template)


@when(
    parsers.parse('I release version "{version}" of "{service}" answering {ms:d} ms slower'),
    target_fixture="release",
)
def _(releases: Releases, service: str, version: str, ms: int) -> Release:
    return releases.release(service, version, latency_ms=ms)


@when(
    parsers.parse('I release version "{version}" of "{service}" failing {percent:d}% of requests'),
    target_fixture="release",
)
def _(releases: Releases, service: str, version: str, percent: int) -> Release:
    return releases.release(service, version, error_rate=percent / 100)


@then(
    parsers.re(r'the (?P<gate>[\w-]+) analysis of "(?P<rollout>[^"]+)" is (?P<phase>\w+)'),
    converters={"gate": Gate.parse, "phase": AnalysisPhase.parse},
)
def _(rollouts: Rollouts, rollout: str, gate: Gate, phase: AnalysisPhase) -> None:
    assert rollouts.wait_for_analysis(rollout, gate).status == phase


@then(
    parsers.re(r'the (?P<gate>[\w-]+) analysis of "(?P<rollout>[^"]+)" (?:still )?runs'),
    converters={"gate": Gate.parse},
)
def _(rollouts: Rollouts, rollout: str, gate: Gate) -> None:
    rollouts.wait_for_analysis_running(rollout, gate)


def _versions(text: str) -> list[str]:
    """'"1.0.0", "1.1.0"' -> ["1.0.0", "1.1.0"]; anything else names what was expected."""
    found = re.findall(r'"([^"]+)"', text)
    if not found or re.sub(r'"[^"]+"', "", text).replace(",", "").replace("and", "").strip():
        raise ConfigError(f'versions {text!r}: expected quoted versions, e.g. "1.0.0", "1.1.0"')
    return found


@given(
    parsers.parse(
        'version "{version}" of "{service}" with the greeting "{greeting}" is released and promoted'
    ),
    target_fixture="release",
)
def _(releases: Releases, rollouts: Rollouts, service: str, version: str, greeting: str) -> Release:
    return releases.release_and_promote(rollouts, service, version, greeting=greeting)


@when(
    parsers.parse('I release version "{version}" of "{service}" with the greeting "{greeting}"'),
    target_fixture="release",
)
def _(releases: Releases, service: str, version: str, greeting: str) -> Release:
    return releases.release(service, version, greeting=greeting)


@then(parsers.parse('only revision {revision:d} of "{rollout}" has pods'))
def _(rollouts: Rollouts, rollout: str, revision: int) -> None:
    assert rollouts.revisions_with_pods(rollout) == [revision]


@then(parsers.parse('revisions {first:d} and {second:d} of "{rollout}" have pods'))
def _(rollouts: Rollouts, rollout: str, first: int, second: int) -> None:
    assert rollouts.revisions_with_pods(rollout) == [first, second]


@then(parsers.parse('revision {revision:d} of "{rollout}" still has pods'))
def _(rollouts: Rollouts, rollout: str, revision: int) -> None:
    assert revision in rollouts.revisions_with_pods(rollout)


@then(parsers.parse('revision {revision:d} of "{rollout}" is scaled down'))
def _(rollouts: Rollouts, rollout: str, revision: int) -> None:
    rollouts.wait_for_scaled_down(rollout, revision)


@then(
    parsers.parse(
        'the revision history of "{rollout}" shows versions {versions:Versions}',
        extra_types={"Versions": _versions},
    )
)
def _(rollouts: Rollouts, rollout: str, versions: list[str]) -> None:
    assert [version for _, version in rollouts.revision_versions(rollout)] == versions


@then(
    parsers.parse(
        'the revision history of "{rollout}" holds {count:d} ReplicaSets, the newest on '
        'version "{version}"'
    )
)
def _(rollouts: Rollouts, rollout: str, count: int, version: str) -> None:
    history = rollouts.wait_for_history_limit(rollout)
    assert (len(history), history[-1][1]) == (count, version)
