"""`bgh gate` against real Prometheus scraping the real demo services under traffic.

The command runs in-process through Typer's runner with ``BGH_PROMETHEUS_URL`` pointing at the
session's Prometheus; its exit code and its report are what CI would see.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analysis.cli import app
from tests.component.analysis.conftest import WINDOW, System

WINDOW_ARG = f"{WINDOW:g}s"


def gate(system: System, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        ["gate", "--checks", str(system.checks_file), "--window", WINDOW_ARG, *args],
        env={"BGH_PROMETHEUS_URL": system.prometheus_url},
    )
    return result.exit_code, result.stdout


def lines_by_check(report: str) -> dict[str, str]:
    names = ("error-rate", "p95-latency", "upstream-error-rate", "request-volume")
    return {line.split()[1]: line for line in report.splitlines()[2:] if line.split()[1] in names}


def test_healthy_preview_is_successful(system: System) -> None:
    code, report = gate(system, "--preview", "1.1.0", "--active", "1.0.0")
    assert report.splitlines()[0].startswith("Successful"), report
    assert code == 0
    lines = lines_by_check(report)
    assert sorted(lines) == ["error-rate", "p95-latency", "request-volume", "upstream-error-rate"]
    assert all(line.startswith("Successful") for line in lines.values()), report
    assert 'version="1.1.0"' in lines["error-rate"]  # the resolved query is on the line


def test_preview_failing_requests_is_failed(system: System) -> None:
    code, report = gate(system, "--preview", "1.2.0", "--active", "1.0.0")
    assert report.splitlines()[0].startswith("Failed"), report
    assert code == 1
    lines = lines_by_check(report)
    assert lines["error-rate"].startswith("Failed"), report
    assert lines["upstream-error-rate"].startswith("Failed"), report
    assert 'critical check "error-rate" is Failed' in report


def test_preview_answering_late_is_failed(system: System) -> None:
    code, report = gate(system, "--preview", "1.3.0", "--active", "1.0.0")
    assert report.splitlines()[0].startswith("Failed"), report
    assert code == 1
    assert lines_by_check(report)["p95-latency"].startswith("Failed"), report
    assert "Hodges-Lehmann" in report or "> max 0.5s" in report


def test_too_little_traffic_is_inconclusive(system: System) -> None:
    code, report = gate(system, "--preview", "1.4.0", "--active", "1.0.0")
    assert report.splitlines()[0].startswith("Inconclusive"), report
    assert code == 3
    assert "too little traffic" in report
    assert "missing data is never a pass" in report


def test_sides_can_be_pod_template_hashes(system: System) -> None:
    healthy, active = system.stacks["healthy"], system.stacks["active"]
    code, report = gate(system, "--preview", healthy.hash, "--active", active.hash)
    assert code == 0, report
    assert f'rollouts_pod_template_hash="{healthy.hash}"' in report


def test_json_html_and_junit_reports_agree(system: System, tmp_path: Path) -> None:
    html, junit = tmp_path / "report.html", tmp_path / "report.xml"
    code, out = gate(system, "--preview", "1.2.0", "--active", "1.0.0", "--json",
                     "--html", str(html), "--junit", str(junit))
    verdict = json.loads(out, parse_constant=pytest.fail)  # NaN/Infinity would be a bug
    assert code == 1 and verdict["phase"] == "Failed"
    failed = {c["name"] for c in verdict["checks"] if c["phase"] == "Failed"}
    assert "error-rate" in failed
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    junit_failed = {case.get("name") for case in suite.iter("testcase")
                    if case.find("failure") is not None}
    assert junit_failed == failed
    page = html.read_text()
    assert "<h1>Failed</h1>" in page and page.count("series-preview") >= len(verdict["checks"])


def test_bad_argument_is_a_usage_error(system: System) -> None:
    code, _ = gate(system, "--preview", '1.1.0"} or vector(1) or {x="', "--active", "1.0.0")
    assert code == 2


def test_unreachable_prometheus_is_error_exit_4(system: System,
                                                broken_prometheus: dict[str, str]) -> None:
    result = CliRunner().invoke(
        app,
        ["gate", "--checks", str(system.checks_file), "--window", WINDOW_ARG,
         "--preview", "1.1.0", "--active", "1.0.0"],
        env={"BGH_PROMETHEUS_URL": broken_prometheus["down"]},
    )
    assert result.exit_code == 4
    assert result.stdout.startswith("Error ")
    assert "is unreachable (connection refused)" in result.stdout
