"""Steps about what gateway A answers through the active and preview Services."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_bdd import given, parsers, then, when

from harness.probes import Gateway, Side, Users


class _SideWord:
    """A side is one word (so "preview no longer shows" is not read as a side); what the word
    is, the harness checks."""

    pattern = r"\w+"  # read by parse for custom types

    def __call__(self, word: str) -> Side:
        return Side.parse(word)


SIDE = {"Side": _SideWord()}


@pytest.fixture
def users(gateway: Gateway) -> Iterator[Users]:
    """Users browsing through gateway A, stopped after the scenario whatever happens."""
    browsing = Users(gateway)
    yield browsing
    browsing.stop()


@then(
    parsers.parse(
        'gateway A sees "{service}" at version "{version}" on {side:Side}', extra_types=SIDE
    )
)
def _(gateway: Gateway, service: str, version: str, side: Side) -> None:
    gateway.wait_for_version(side, service, version)


@then(parsers.parse('the page through {side:Side} shows "{text}"', extra_types=SIDE))
def _(gateway: Gateway, side: Side, text: str) -> None:
    gateway.wait_for_page(side, text)


@then(parsers.parse('the page through {side:Side} no longer shows "{text}"', extra_types=SIDE))
@then(parsers.parse('the page through {side:Side} does not show "{text}"', extra_types=SIDE))
def _(gateway: Gateway, side: Side, text: str) -> None:
    gateway.wait_for_page(side, text, present=False)


@then("gateway A answers on active and preview")
def _(gateway: Gateway) -> None:
    assert gateway.unanswered() == {}


@given("users are browsing through active")
@when("users are browsing through active")
def _(users: Users) -> None:
    users.start(rps=100)


@when("users are browsing through active and preview")
def _(users: Users) -> None:
    users.start(rps=20, sides=(Side.ACTIVE, Side.PREVIEW))


@then(parsers.parse("no user request failed out of at least {count:d}"))
def _(users: Users, count: int) -> None:
    traffic = users.stop_after(count)
    assert [a.describe() for a in traffic.failures] == [], traffic.summary()


@then(parsers.parse('users saw gateway A go from "{old}" to "{new}"'))
def _(users: Users, old: str, new: str) -> None:
    assert users.traffic is not None and users.traffic.versions_seen("gateway-a") == [old, new]


@then(parsers.parse('users saw gateway A go from "{old}" to "{new}" and back'))
def _(users: Users, old: str, new: str) -> None:
    traffic = users.traffic
    assert traffic is not None
    assert (traffic.versions_seen("gateway-a"), traffic.last_version("gateway-a")) == (
        [old, new],
        old,
    )


@then(parsers.parse('users saw only gateway A "{version}"'))
def _(users: Users, version: str) -> None:
    assert users.traffic is not None and users.traffic.versions_seen("gateway-a") == [version]
