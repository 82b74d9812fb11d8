"""Checks files, sides and query resolution: validation, escaping, placeholders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from analysis.checks import (
    DEFAULT_CHECKS,
    HASH_LABEL,
    VERSION_LABEL,
    Side,
    escape_label_value,
    format_duration,
    load_checks,
    parse_checks,
    parse_duration,
    resolve_query,
    validate_label_value,
)
from analysis.errors import ArgumentError, CheckError


def one_check(**overrides: Any) -> dict[str, Any]:
    check = {
        "name": "latency",
        "kind": "distribution",
        "query": "histogram_quantile(0.95, sum by (le) (rate(x{ {selector} }[{rate_window}])))",
        "condition": {"max": 0.5},
    }
    return {"checks": [{**check, **overrides}]}


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("1.1.0", "1.1.0"),
        ('a"b', 'a\\"b'),
        ("a\\b", "a\\\\b"),
        ('\\"', '\\\\\\"'),  # a backslash before a quote cannot unescape the quote
        ("a\nb", "a\\nb"),
    ],
)
def test_escape_label_value_follows_promql_string_rules(raw: str, escaped: str) -> None:
    assert escape_label_value(raw) == escaped


def test_escaped_value_cannot_close_its_literal() -> None:
    hostile = '1.1.0"} or vector(1) or {x="'
    literal = f'"{escape_label_value(hostile)}"'
    # Every quote inside is preceded by an odd number of backslashes: none ends the literal.
    inner = literal[1:-1]
    for i, char in enumerate(inner):
        if char == '"':
            run = len(inner[:i]) - len(inner[:i].rstrip("\\"))
            assert run % 2 == 1


@pytest.mark.parametrize("bad", ["", "1.1.0 ", 'a"b', "a{b}", "ü", "x" * 254, "a\nb", "a,b"])
def test_label_values_outside_the_token_alphabet_are_refused(bad: str) -> None:
    with pytest.raises(ArgumentError, match="is not a label value"):
        validate_label_value(bad, what="preview version")


@pytest.mark.parametrize(
    ("raw", "label", "value"),
    [
        ("1.1.0", VERSION_LABEL, "1.1.0"),
        ("6c4b8d7f9", HASH_LABEL, "6c4b8d7f9"),
        ("v2", VERSION_LABEL, "v2"),  # too short for a hash
        ("version:6c4b8d7f9", VERSION_LABEL, "6c4b8d7f9"),
        ("hash:abc", HASH_LABEL, "abc"),
        ("1.1.0-rc.1+build", VERSION_LABEL, "1.1.0-rc.1+build"),
    ],
)
def test_side_parses_version_or_hash(raw: str, label: str, value: str) -> None:
    side = Side.parse("preview", raw)
    assert (side.label, side.value) == (label, value)


def test_side_refuses_a_hostile_value_naming_the_side() -> None:
    with pytest.raises(ArgumentError, match=r"^active version or hash '1\"} or vector"):
        Side.parse("active", '1"} or vector(1)')


def test_selector_includes_service_only_when_given() -> None:
    side = Side.parse("preview", "1.1.0")
    common = {"rate_window": "1m", "check": "c"}
    assert resolve_query("x{ {selector} }", side, service=None, **common) == 'x{ version="1.1.0" }'
    assert (
        resolve_query("x{ {selector} }", side, service="service-b", **common)
        == 'x{ service="service-b",version="1.1.0" }'
    )


def test_a_namespace_narrows_the_selector_escaped() -> None:
    """Identical pod templates in two namespaces share a hash; their series must not mix."""
    side = Side.parse("preview", "6c4b8d7f9")
    query = resolve_query(
        "x{ {selector} }", side, service="service-b", rate_window="1m", check="c",
        namespace='rb-1"x',
    )  # fmt: skip
    assert query == (
        'x{ namespace="rb-1\\"x",service="service-b",rollouts_pod_template_hash="6c4b8d7f9" }'
    )


def test_placeholders_are_filled_in_one_pass() -> None:
    # A value that looks like a placeholder is not expanded again.
    side = Side("preview", VERSION_LABEL, "{rate_window}")
    query = resolve_query('x{version="{version}"}[{rate_window}]', side, service=None,
                          rate_window="5m", check="c")
    assert query == 'x{version="{rate_window}"}[5m]'


def test_version_placeholder_with_a_hash_side_says_what_to_use() -> None:
    with pytest.raises(ArgumentError, match=r"uses \{version\}.*given as a pod-template hash.*"
                                            r"use \{selector\}"):
        resolve_query('x{version="{version}"}', Side.parse("preview", "6c4b8d7f9"), service=None,
                      rate_window="1m", check="c")


def test_service_placeholder_without_a_service_is_an_argument_error() -> None:
    with pytest.raises(ArgumentError, match=r"uses \{service\}"):
        resolve_query('x{service="{service}"}', Side.parse("preview", "1.1.0"), service=None,
                      rate_window="1m", check="c")


def test_default_checks_file_is_valid_and_covers_the_issue() -> None:
    checks = load_checks()
    assert checks.source == str(DEFAULT_CHECKS)
    assert [c.name for c in checks.checks] == [
        "error-rate", "p95-latency", "p95-latency-window", "upstream-error-rate",
        "request-volume"]
    # Samples that do not overlap: the step is the rate window.
    assert checks.step == 20.0 and checks.rate_window == "20s"
    assert all(c.min_total >= 50 for c in checks.checks if c.kind in ("ratio", "quantile"))
    assert all("{selector}" in q for c in checks.checks for q in c.templates().values())


def test_templates_fold_lines_but_keep_spaces_inside_a_line() -> None:
    checks = parse_checks(one_check(query='sum(x{a="two  spaces"})\n   / 2'))
    assert checks.checks[0].templates() == {"query": 'sum(x{a="two  spaces"}) / 2'}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "ratio"}, "a ratio check needs `errors` and `total`"),
        ({"condition": {}}, "needs at least one of max, min"),
        ({"condition": {"max": "high"}}, "checks.0.condition.max"),
        ({"query": "x{ {version_label} }"}, r"unknown placeholder \{version_label\}"),
        ({"name": "Has Spaces"}, "checks.0.name"),
        ({"weight": 0}, "checks.0.weight"),
        ({"missing": "successful"}, "checks.0.missing"),
        ({"colour": "red"}, "checks.0.colour"),
        ({"kind": "volume", "condition": {"max": 1}}, "a volume check takes `min` only"),
    ],
)
def test_invalid_check_names_its_place_in_the_file(change: dict[str, Any], message: str) -> None:
    with pytest.raises(CheckError, match=message):
        parse_checks(one_check(**change), source="bad.yaml")


def test_invalid_file_settings_are_reported() -> None:
    raw = {**one_check(), "step": "fast", "rate_window": "1 minute", "score": {"pass": 0.5,
                                                                               "marginal": 0.9}}
    with pytest.raises(CheckError) as caught:
        parse_checks(raw, source="bad.yaml")
    message = str(caught.value)
    assert message.startswith("checks file bad.yaml is invalid:")
    assert "step:" in message and "rate_window:" in message and "marginal (0.9)" in message


def test_duplicate_names_are_refused() -> None:
    raw = one_check()
    raw["checks"].append(dict(raw["checks"][0]))
    with pytest.raises(CheckError, match="repeated: latency"):
        parse_checks(raw)


def test_unreadable_and_non_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(CheckError, match="cannot read checks file"):
        load_checks(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("checks: [unclosed\n")
    with pytest.raises(CheckError, match="is not valid YAML"):
        load_checks(bad)


def test_select_keeps_file_order_and_names_unknown_checks() -> None:
    checks = load_checks()
    assert [c.name for c in checks.select(["request-volume", "error-rate"]).checks] == [
        "error-rate", "request-volume"]
    with pytest.raises(ArgumentError, match=r"unknown check 'nope'.*checks there: error-rate"):
        checks.select(["nope"])


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("5m", 300), ("1h", 3600),
                                                 ("250ms", 0.25), ("1.5m", 90)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text, what="window") == seconds


@pytest.mark.parametrize("text", ["5", "five minutes", "-1m", "0s", "1m30s"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ArgumentError, match="window"):
        parse_duration(text, what="window")


def test_format_duration() -> None:
    assert [format_duration(s) for s in (3600, 300, 90, 20, 1.5)] == ["1h", "5m", "90s", "20s",
                                                                       "1.5s"]
