"""Steps of the GitOps runbook: releases as commits, Argo CD's sync and health."""

from __future__ import annotations

from pytest_bdd import given, parsers, then, when

from harness.argocd import Health
from harness.delivery import ArgoCDDelivery
from harness.errors import ConfigError
from harness.release import Release, Releases

HEALTH = {"Health": Health.parse}


def _delivery(releases: Releases) -> ArgoCDDelivery:
    if releases.delivery is None:
        raise ConfigError(
            "this step needs the demo system delivered by Argo CD: tag the feature or scenario "
            "@gitops"
        )
    return releases.delivery


@given("the demo system is delivered by Argo CD from a Git repository")
def _(releases: Releases) -> None:
    _delivery(releases).wait_settled()


@when(
    parsers.parse('I commit version "{version}" of "{service}" to the QA version file and push it'),
    target_fixture="release",
)
def _(releases: Releases, service: str, version: str) -> Release:
    _delivery(releases)
    return releases.release(service, version)


@then(
    parsers.parse(
        'Argo CD has synced the commit, with "{rollout}" {health:Health}', extra_types=HEALTH
    )
)
def _(releases: Releases, rollout: str, health: Health) -> None:
    delivery = _delivery(releases)
    delivery.wait_settled((health,), names=(delivery.application_of(rollout),))


@then("Argo CD reports every application Synced and Healthy")
def _(releases: Releases) -> None:
    _delivery(releases).wait_settled()
