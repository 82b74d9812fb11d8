"""The Gateway façade against real demo services on loopback: gateway A (active) reaching B and
C, and a second gateway A (preview) whose B is stopped or hangs."""

from __future__ import annotations

import re
import threading
import time

import pytest

from harness.demo import side_by_side
from harness.errors import ConfigError, ProbeError
from harness.probes import Gateway, Side, Traffic
from harness.settings import load_settings
from harness.targets import target_for
from harness.targets.processes import free_port
from tests.component.conftest import Demo
from tests.support.services import Service, Services


def gateway(demo: Demo, preview: str = "http://127.0.0.1:9") -> Gateway:
    urls = {Side.ACTIVE: demo.a.http, Side.PREVIEW: preview}
    return Gateway(urls.__getitem__, timeout=2.0, request_timeout=1.0)


def test_both_sides_are_read_at_once_with_versions_and_pods(demo: Demo, launch: Services) -> None:
    preview = launch.start(
        "gateway-a",
        VERSION="1.1.0",
        POD_NAME="gateway-a-7d9f-green",
        SERVICE_B_URL=f"http://{demo.b.address}",
        SERVICE_C_ADDR=demo.c.address,
    )
    answers = gateway(demo, preview.http).read_versions()
    active, green = answers[Side.ACTIVE], answers[Side.PREVIEW]
    assert active.ok and green.ok
    assert dict(active.versions) == {
        "gateway-a": "1.0.0",
        "service-b": "1.1.0",
        "service-c": "1.2.0",
    }
    assert green.version("gateway-a") == "1.1.0"
    assert active.pods["gateway-a"] == "gateway-a-5f6d-blue"
    assert green.pods["gateway-a"] == "gateway-a-7d9f-green"
    assert green.pods["service-b"] == "service-b-6c4b-blue"


def test_an_upstream_failure_is_an_answer_naming_it(demo: Demo, launch: Services) -> None:
    broken = launch.start(
        "gateway-a",
        VERSION="1.1.0",
        SERVICE_B_URL="http://127.0.0.1:9",
        SERVICE_C_ADDR=demo.c.address,
    )
    answer = gateway(demo, broken.http).read(Side.PREVIEW)
    assert answer.status == 502
    assert "service-b" in answer.errors
    assert answer.version("service-c") == "1.2.0"
    assert "service-b failed" in answer.describe()


def test_nothing_listening_is_an_answer_without_status(demo: Demo) -> None:
    answer = gateway(demo).read(Side.PREVIEW)
    assert answer.status is None
    assert "ClientConnectorError: Cannot connect to host" in answer.error


def test_a_hanging_gateway_ends_at_the_request_timeout(demo: Demo, hanging_peer: str) -> None:
    started = time.monotonic()
    answer = gateway(demo, f"http://{hanging_peer}").read(Side.PREVIEW)
    assert answer.status is None
    assert "Timeout" in answer.error
    assert time.monotonic() - started < 3.0


def test_wait_for_version_returns_the_matching_answer(demo: Demo) -> None:
    answer = gateway(demo).wait_for_version(Side.ACTIVE, "service-c", "1.2.0")
    assert answer.version("service-c") == "1.2.0"


def test_wait_for_version_gives_up_with_the_last_answer(demo: Demo) -> None:
    with pytest.raises(ProbeError) as caught:
        gateway(demo).wait_for_version(Side.ACTIVE, "service-b", "9.9.9", within=0.5)
    message = str(caught.value)
    assert 'did not show "service-b" at version "9.9.9" within 0.5s' in message
    assert "last answer: active: HTTP 200" in message
    assert "service-b=1.1.0 (service-b-6c4b-blue)" in message


def test_wait_for_version_refuses_an_unknown_service(demo: Demo) -> None:
    with pytest.raises(ConfigError, match='unknown service "service-x"; expected one of'):
        gateway(demo).wait_for_version(Side.ACTIVE, "service-x", "1.0.0")


def test_steady_traffic_records_every_answer_on_fresh_connections(demo: Demo) -> None:
    probes = gateway(demo)
    with probes.steady_traffic(rps=100) as traffic:
        traffic.wait_until(lambda t: len(t.answers) >= 50, what="50 answers", within=10)
    assert len(traffic.answers) >= 50
    assert traffic.failures == []
    assert traffic.versions_seen("gateway-a") == ["1.0.0"]
    starts = sorted(a.at for a in traffic.answers)
    assert starts[-1] - starts[0] < 2.0, "100/s: 50 answers take about half a second"
    assert len(probes.last) > 0


def test_steady_traffic_through_a_hanging_gateway_records_timeouts(hanging_peer: str) -> None:
    probes = Gateway(lambda side: f"http://{hanging_peer}", timeout=2.0, request_timeout=0.3)
    with probes.steady_traffic(rps=20) as traffic:
        traffic.wait_until(lambda t: len(t.answers) >= 3, what="3 answers", within=5)
    assert traffic.failures == traffic.answers
    assert traffic.answers[0].error == "TimeoutError: no answer within 0.3s"


def test_steady_traffic_costs_the_users_little_cpu_per_request(demo: Demo) -> None:
    """The users share the machine with what they test. With httpx on fresh connections each
    request cost this process about 3 ms of CPU, a third of a core at 100/s: on a loaded machine
    the users got less than that and fell behind (571 answers in 30 s instead of 1,000). The CPU
    time of the users' own thread, not wall time, so the machine's load does not decide this
    test; the figures are in benchmarks/RESULTS.md."""
    probes = gateway(demo)
    with probes.steady_traffic(rps=200) as traffic:
        traffic.wait_until(lambda t: len(t.answers) >= 400, what="400 answers", within=30)
        users = next(t for t in threading.enumerate() if t.name == "steady-traffic")
        assert users.ident is not None
        cpu = time.clock_gettime(time.pthread_getcpuclockid(users.ident))
        answered = len(traffic.answers)
    per_request = cpu / answered
    assert traffic.failures == []
    assert per_request < 0.0016, f"{per_request * 1000:.2f} ms of CPU per request"


def test_traffic_says_when_users_fell_behind_and_how_loaded_the_machine_was() -> None:
    from harness.probes import Answer

    traffic = Traffic(rps=100, sides=(Side.ACTIVE,), started=1000.0)
    for _ in range(50):
        traffic.record(Answer(Side.ACTIVE, "u", 200, {"gateway-a": "1.0.0"}, {}, {}, 0.01, 1000.0))
    pace = traffic.pace(now=1010.0)
    assert pace.startswith("answered at 5/s against 100/s asked over 10.0s (behind: starved")
    assert re.search(r"load average [\d.]+, [\d.]+, [\d.]+ \(1, 5, 15 min\) on \d+ CPUs$", pace)
    assert "behind" not in traffic.pace(now=1000.5)


def test_steady_traffic_waits_name_what_was_missing(demo: Demo) -> None:
    with (
        pytest.raises(ProbeError, match=r"did not show version 2 within 0.3s: \d+ requests"),
        gateway(demo).steady_traffic(rps=20) as traffic,
    ):
        traffic.wait_until(
            lambda t: t.first("gateway-a", "2.0.0") is not None, what="version 2", within=0.3
        )


@pytest.mark.parametrize("rps", [0, -1, 5000])
def test_steady_traffic_refuses_a_silly_rate(demo: Demo, rps: float) -> None:
    with (
        pytest.raises(ConfigError, match="expected 0 < rps <= 1000"),
        gateway(demo).steady_traffic(rps=rps),
    ):
        pass


def test_traffic_reports_versions_in_order_of_first_appearance() -> None:
    from harness.probes import Answer

    def answer(at: float, version: str, side: Side = Side.ACTIVE) -> Answer:
        return Answer(side, "u", 200, {"gateway-a": version}, {}, {}, 0.01, at)

    traffic = Traffic(rps=10, sides=(Side.ACTIVE,))
    for a in (answer(3, "1.1.0"), answer(1, "1.0.0"), answer(2, "1.0.0"), answer(4, "1.1.0")):
        traffic.record(a)
    traffic.record(answer(0, "2.0.0", Side.PREVIEW))
    assert traffic.versions_seen("gateway-a") == ["1.0.0", "1.1.0"]
    first = traffic.first("gateway-a", "1.1.0")
    assert first is not None and first.at == 3


def test_traffic_reports_the_version_users_ended_on() -> None:
    from harness.probes import Answer

    def answer(at: float, version: str, side: Side = Side.ACTIVE) -> Answer:
        return Answer(side, "u", 200, {"gateway-a": version}, {}, {}, 0.01, at)

    traffic = Traffic(rps=10, sides=(Side.ACTIVE,))
    assert traffic.last_version("gateway-a") is None
    for a in (
        answer(1, "1.0.0"),
        answer(3, "1.0.0"),
        answer(2, "1.1.0"),
        answer(4, "2.0.0", Side.PREVIEW),
    ):
        traffic.record(a)
    traffic.record(Answer(Side.ACTIVE, "u", 502, {}, {}, {"gateway-a": "refused"}, 0.01, 5))
    assert traffic.versions_seen("gateway-a") == ["1.0.0", "1.1.0"]
    assert traffic.last_version("gateway-a") == "1.0.0"
    assert traffic.last_version("gateway-a", side=Side.PREVIEW) == "2.0.0"


@pytest.mark.parametrize(("text", "side"), [("active", Side.ACTIVE), (" Preview ", Side.PREVIEW)])
def test_side_words(text: str, side: Side) -> None:
    assert Side.parse(text) is side


def test_an_unknown_side_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match='unknown side "green"; expected one of active, preview'):
        Side.parse("green")


def test_the_existing_target_needs_the_gateway_urls() -> None:
    probes = target_for(
        load_settings(target="existing", gateway_url="http://127.0.0.1:9")
    ).gateway()
    answer = probes.read(Side.PREVIEW)
    assert answer.status is None
    assert "set BGH_GATEWAY_PREVIEW_URL" in answer.error


def test_wait_for_answers_waits_until_a_late_gateway_answers_on_both_sides(
    demo: Demo, launch: Services
) -> None:
    """The preview gateway starts after the wait does, as pods Ready before their process is."""
    port = free_port()
    late: list[Service] = []
    starter = threading.Timer(
        0.5,
        lambda: late.append(
            launch.start(
                "gateway-a",
                VERSION="1.1.0",
                PORT=str(port),
                SERVICE_B_URL=f"http://{demo.b.address}",
                SERVICE_C_ADDR=demo.c.address,
            )
        ),
    )
    starter.start()
    try:
        answers = gateway(demo, f"http://127.0.0.1:{port}").wait_for_answers(within=15)
    finally:
        starter.join()
    assert late, "the late gateway did not start"
    assert answers[Side.PREVIEW].ok and answers[Side.ACTIVE].ok
    assert answers[Side.PREVIEW].version("gateway-a") == "1.1.0"
    lines = side_by_side(answers)
    assert lines[0].split() == ["through", "active", "through", "preview"]
    assert lines[1].split()[:2] == ["gateway-a", "1.0.0"] and "1.1.0" in lines[1]


def test_wait_for_answers_gives_up_naming_the_side_that_did_not_answer(demo: Demo) -> None:
    with pytest.raises(ProbeError) as caught:
        gateway(demo).wait_for_answers(within=0.5)
    message = str(caught.value)
    assert "did not answer 200 through active and preview within 0.5s" in message
    assert "preview: no answer from http://127.0.0.1:9" in message
    assert "active: HTTP 200" in message
