"""`gate`'s options and its usage errors; judged runs are in the component tests."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer import Typer
from typer.testing import CliRunner

from analysis.cli import EXIT_CODES, RolloutSides, app, gate_command
from analysis.judge import Phase


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["gate", *args],
                                env={"BGH_PROMETHEUS_URL": "http://127.0.0.1:9"})
    return result.exit_code, result.output


def test_gate_has_exactly_the_options_of_the_issue() -> None:
    """The issue's options, plus --service and --namespace to narrow the series judged."""
    result = CliRunner().invoke(app, ["gate", "--help"], env={"COLUMNS": "200"})
    options = set(re.findall(r"--[a-z][a-z-]*", result.output)) - {"--help"}
    assert options == {"--preview", "--active", "--rollout", "--checks", "--window", "--json",
                       "--html", "--junit", "--service", "--namespace"}


def test_exit_codes_are_distinct_and_only_successful_is_zero() -> None:
    assert EXIT_CODES == {Phase.SUCCESSFUL: 0, Phase.FAILED: 1, Phase.INCONCLUSIVE: 3,
                          Phase.ERROR: 4}


def test_hostile_version_is_a_usage_error_before_any_query() -> None:
    code, output = invoke("--preview", '1"} or vector(1)', "--active", "1.0.0")
    assert code == 2
    assert "bgh gate: preview version or hash" in output


def test_bad_window_and_bad_checks_file_are_usage_errors(tmp_path: Path) -> None:
    assert invoke("--preview", "1.1.0", "--active", "1.0.0", "--window", "soon")[0] == 2
    bad = tmp_path / "checks.yaml"
    bad.write_text("checks: []\n")
    code, output = invoke("--preview", "1.1.0", "--active", "1.0.0", "--checks", str(bad))
    assert code == 2 and f"checks file {bad} is invalid" in output


def test_documented_exit_codes_match_the_code() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "analysis.md").read_text()
    table = dict(re.findall(r"^\| (\d) \| (\w+)", doc, flags=re.M))
    assert {int(code): word for code, word in table.items()} == {
        0: "Successful", 1: "Failed", 2: "usage", 3: "Inconclusive", 4: "Error"}
    assert {code: str(phase) for phase, code in EXIT_CODES.items()} == {
        c: w for c, w in ((int(k), v) for k, v in table.items()) if c != 2}


def test_rollout_without_a_reader_or_with_sides_is_a_usage_error() -> None:
    code, output = invoke("--rollout", "service-b")
    assert code == 2 and "--rollout needs `bgh gate`" in output
    code, output = invoke("--rollout", "service-b", "--preview", "1.1.0")
    assert code == 2 and "give either --rollout or --preview and --active" in output
    code, output = invoke("--preview", "1.1.0")
    assert code == 2 and "give --preview and --active" in output


def test_the_same_side_twice_is_a_usage_error() -> None:
    code, output = invoke("--preview", "1.1.0", "--active", "1.1.0")
    assert code == 2 and "preview and active are the same" in output


def test_rollout_judges_its_hashes_for_its_own_service() -> None:
    """The reader stands in for Kubernetes (bgh passes one that reads the Rollout's status);
    Prometheus is unreachable, so the verdict is Error, but it shows what was asked."""
    asked: list[str] = []

    def read(name: str) -> RolloutSides:
        asked.append(name)
        return RolloutSides(preview="7d9f8c6b5", active="5c8f9d7b4", namespace="demo")

    command = Typer()
    command.command("gate")(gate_command(read_rollout=read))
    result = CliRunner().invoke(command, ["--rollout", "service-b", "--json"],
                                env={"BGH_PROMETHEUS_URL": "http://127.0.0.1:9"})
    body = json.loads(result.stdout)
    assert (result.exit_code, asked) == (4, ["service-b"])
    assert body["preview"] == {"label": "rollouts_pod_template_hash", "value": "7d9f8c6b5"}
    assert body["service"] == "service-b"
    query = body["checks"][0]["queries"]["preview"]["total"]
    assert 'namespace="demo",service="service-b",rollouts_pod_template_hash="7d9f8c6b5"' in query
