"""Checks: what to measure, how to judge it, and how a check's PromQL is resolved safely.

A checks file (YAML, see ``docs/analysis.md``) lists checks and the settings they share. This
module parses and validates it, parses the two sides being compared (preview and active, each a
version or a pod-template hash) and fills a check's query placeholders with escaped label values.
It never talks to Prometheus and never judges.

Placeholders are ``{service}``, ``{version}``, ``{hash}`` (label values, to be used inside
double quotes), ``{selector}`` (a ready label matcher list for the side, e.g.
``service="service-b",version="1.1.0"``) and ``{rate_window}``. Every value put into a query is
validated first and escaped as a PromQL string literal anyway, so an argument cannot change the
query's structure.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from analysis.errors import ArgumentError, CheckError

DEFAULT_CHECKS = Path(__file__).with_name("checks.yaml")

# The label Argo Rollouts puts on every pod of a ReplicaSet; a scrape adds it as a target label.
HASH_LABEL = "rollouts_pod_template_hash"
VERSION_LABEL = "version"

# Same rule as the services' VERSION and POD_NAME values: what can be a label value here.
_LABEL_VALUE = re.compile(r"[A-Za-z0-9._+-]{1,253}")
# Kubernetes encodes the pod-template hash with this alphabet (no vowels, no 0, 1 or 3), from a
# 32-bit number, so it is at most 10 characters; 6 is the shortest this guess accepts.
_POD_TEMPLATE_HASH = re.compile(r"[bcdfghjklmnpqrstvwxz2456789]{6,10}")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PLACEHOLDERS = ("service", "version", "hash", "selector", "rate_window")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PROMQL_DURATION = re.compile(r"\d+(ms|s|m|h|d)")
_LINE_BREAK = re.compile(r"\s*\n\s*")


def escape_label_value(value: str) -> str:
    """``value`` as the inside of a PromQL double-quoted string literal.

    PromQL strings follow Go's escaping: a backslash and a double quote must be escaped, and a
    raw line break would end the literal early.
    """
    return (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )


def validate_label_value(
    value: str, *, what: str, example: str = "1.1.0, or a pod-template hash like 6c4b8d7f9"
) -> str:
    """``value`` if it is a plain label value; else ``ArgumentError`` naming ``what``."""
    if not _LABEL_VALUE.fullmatch(value):
        raise ArgumentError(
            f"{what} {value!r} is not a label value this analysis accepts: "
            f"want 1 to 253 letters, digits or . _ + - (e.g. {example})"
        )
    return value


def parse_duration(text: str, *, what: str) -> float:
    """Seconds in a duration such as ``90s``, ``5m`` or ``1h``; ``ArgumentError`` otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ArgumentError(f"{what} {text!r} is not a duration; want e.g. 30s, 5m or 1h")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not seconds > 0:
        raise ArgumentError(f"{what} {text!r} must be longer than zero; want e.g. 30s, 5m or 1h")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest of ``1h``, ``5m``, ``30s`` or ``1.5s`` that says ``seconds``."""
    for unit, size in (("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class Side:
    """One side of a comparison: which pods, by ``version`` or by pod-template hash."""

    role: str  # "preview" or "active", for messages
    label: str  # VERSION_LABEL or HASH_LABEL
    value: str

    @classmethod
    def parse(cls, role: str, raw: str) -> Side:
        """Read ``1.1.0``, ``6c4b8d7f9``, ``version:1.1.0`` or ``hash:6c4b8d7f9``.

        Without a prefix, a value spelled only with the pod-template-hash alphabet (6 to 10
        characters) is a hash; anything else, such as ``1.1.0``, is a version.
        """
        kind, sep, rest = raw.partition(":")
        if sep and kind in ("version", "hash"):
            label = HASH_LABEL if kind == "hash" else VERSION_LABEL
            return cls(role, label, validate_label_value(rest, what=f"{role} {kind}"))
        value = validate_label_value(raw, what=f"{role} version or hash")
        label = HASH_LABEL if _POD_TEMPLATE_HASH.fullmatch(value) else VERSION_LABEL
        return cls(role, label, value)

    @property
    def matcher(self) -> str:
        return f'{self.label}="{escape_label_value(self.value)}"'

    def __str__(self) -> str:
        return self.matcher


class Kind(StrEnum):
    """Which statistics judge a check (see ``judge``)."""

    RATIO = "ratio"  # errors / total, counts per step summed, compared with Fisher's exact test
    DISTRIBUTION = "distribution"  # a value per step, compared as samples (Mann-Whitney U)
    VOLUME = "volume"  # a count per step, summed over the window
    QUANTILE = "quantile"  # histogram bucket counts per step, one quantile of the whole window


class Direction(StrEnum):
    """Which change counts against the preview, as Kayenta's ``direction``."""

    INCREASE = "increase"
    DECREASE = "decrease"
    EITHER = "either"

    def allows(self, way: Direction) -> bool:
        return self is Direction.EITHER or self is way


class OutlierStrategy(StrEnum):
    """Kayenta's ``outliers.strategy``: drop values beyond the fences, or keep every one."""

    REMOVE = "remove"
    KEEP = "keep"


class Missing(StrEnum):
    """What a check without enough data is: never Successful."""

    INCONCLUSIVE = "inconclusive"
    FAILED = "failed"


def _seconds(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return parse_duration(value, what="duration")
        except ArgumentError as exc:
            raise ValueError(str(exc)) from exc
    return value


def _promql_duration(value: Any) -> Any:
    if isinstance(value, str) and not _PROMQL_DURATION.fullmatch(value):
        raise ValueError(f"{value!r} is not a PromQL duration; want e.g. 30s or 1m")
    return value


Seconds = Annotated[float, BeforeValidator(_seconds), Field(gt=0)]
PromQLDuration = Annotated[str, BeforeValidator(_promql_duration)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Condition(_Frozen):
    """Bounds on the preview: absolute (``max``, ``min``) or relative to active.

    ``max_increase``/``max_decrease`` are shifts in the metric's unit; ``max_ratio``/``min_ratio``
    bound preview over active as a ratio (Kayenta's ``allowedIncrease``/``allowedDecrease`` on
    the mean ratio). ``max_share_above``: the largest share of steps allowed above ``max``, so a
    regression in part of the window fails even while the median stays under the bound.
    """

    max: float | None = Field(default=None, allow_inf_nan=False)
    min: float | None = Field(default=None, allow_inf_nan=False)
    max_increase: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_decrease: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_ratio: float | None = Field(default=None, ge=1, allow_inf_nan=False)
    min_ratio: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    max_share_above: float = Field(default=0.2, ge=0, lt=1)

    def describe(self, unit: str = "") -> str:
        """E.g. ``max 0.05, at most +0.01 over active``."""
        parts = []
        if self.max is not None:
            parts.append(f"max {self.max:g}{unit}")
        if self.min is not None:
            parts.append(f"min {self.min:g}{unit}")
        if self.max_increase is not None:
            parts.append(f"at most +{self.max_increase:g}{unit} over active")
        if self.max_decrease is not None:
            parts.append(f"at most -{self.max_decrease:g}{unit} under active")
        if self.max_ratio is not None:
            parts.append(f"at most x{self.max_ratio:g} of active")
        if self.min_ratio is not None:
            parts.append(f"at least x{self.min_ratio:g} of active")
        return ", ".join(parts)

    @property
    def relative(self) -> bool:
        return any(v is not None for v in (self.max_increase, self.max_decrease,
                                            self.max_ratio, self.min_ratio))


class Outliers(_Frozen):
    """Kayenta's outlier handling: ``remove`` beyond ``factor`` IQR of the quartiles (and the
    1st/99th percentiles, its reduced sensitivity), or ``keep``."""

    strategy: OutlierStrategy = OutlierStrategy.REMOVE
    factor: float = Field(3.0, gt=0, allow_inf_nan=False)


class Check(_Frozen):
    """A name, PromQL, a condition, a rule for missing data, a weight and whether it is critical."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    description: str = ""
    kind: Kind
    query: str | None = None  # distribution, volume and quantile
    errors: str | None = None  # ratio: numerator, a count per step (increase over the step)
    total: str | None = None  # ratio: denominator, a count per step
    quantile: float | None = Field(default=None, gt=0, lt=1)  # quantile: which one, e.g. 0.95
    condition: Condition
    direction: Direction = Direction.EITHER
    outliers: Outliers = Field(default_factory=lambda: Outliers.model_validate({}))
    missing: Missing = Missing.INCONCLUSIVE
    must_have_data: bool = False  # Kayenta's name for `missing: failed`
    weight: float = Field(1.0, gt=0, allow_inf_nan=False)
    group: str = Field("default", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    critical: bool = False
    # ratio and quantile: fewer requests than this in the window is NoData; one request must
    # never decide a ratio.
    min_total: float = Field(50.0, ge=1, allow_inf_nan=False)
    services: tuple[str, ...] | None = None  # the services it applies to (default: every one)
    unit: str = ""

    @model_validator(mode="after")
    def _fits_kind(self) -> Check:
        c = self.condition
        if self.kind is Kind.RATIO:
            if self.errors is None or self.total is None or self.query is not None:
                raise ValueError("a ratio check needs `errors` and `total` queries, and no `query`")
            if c.min is not None or c.max_decrease is not None or c.min_ratio is not None:
                raise ValueError("a ratio check takes `max`, `max_increase` and `max_ratio` only")
        else:
            if self.query is None or self.errors is not None or self.total is not None:
                raise ValueError(f"a {self.kind} check needs one `query`, and no `errors`/`total`")
        if (self.kind is Kind.QUANTILE) != (self.quantile is not None):
            raise ValueError("`quantile` (e.g. 0.95) goes with kind quantile, and only there")
        if self.kind is Kind.VOLUME and (c.min is None or c.max is not None or c.relative):
            raise ValueError("a volume check takes `min` only (the least requests in the window)")
        if not (c.max is not None or c.min is not None or c.relative):
            raise ValueError(
                "the condition needs at least one of max, min, max_increase, max_decrease, "
                "max_ratio, min_ratio"
            )
        for service in self.services or ():
            if not _LABEL_VALUE.fullmatch(service):
                raise ValueError(f"service {service!r} in `services` is not a plain label value")
        for template in self.templates().values():
            unknown = sorted(set(_PLACEHOLDER.findall(template)) - set(_PLACEHOLDERS))
            if unknown:
                raise ValueError(
                    f"unknown placeholder {{{unknown[0]}}}; known: "
                    + ", ".join(f"{{{p}}}" for p in _PLACEHOLDERS)
                )
        return self

    @property
    def on_missing(self) -> Missing:
        """What NoData makes this check: ``must_have_data`` is Kayenta's ``missing: failed``."""
        return Missing.FAILED if self.must_have_data else self.missing

    def applies_to(self, service: str | None) -> bool:
        """Whether this check can judge ``service`` (any check applies when none is named)."""
        return service is None or self.services is None or service in self.services

    def templates(self) -> dict[str, str]:
        """The query templates by role: ``query``, or ``errors`` and ``total``."""
        named = {"query": self.query, "errors": self.errors, "total": self.total}
        # Folded onto one line for reports; spaces inside a line (maybe in a string) are kept.
        return {
            key: _LINE_BREAK.sub(" ", value.strip())
            for key, value in named.items()
            if value is not None
        }

    def resolve(
        self, side: Side, *, service: str | None, rate_window: str, namespace: str | None = None
    ) -> dict[str, str]:
        """The check's queries for ``side``, placeholders filled with escaped values."""
        return {
            key: resolve_query(
                template,
                side,
                service=service,
                rate_window=rate_window,
                check=self.name,
                namespace=namespace,
            )
            for key, template in self.templates().items()
        }


def resolve_query(
    template: str,
    side: Side,
    *,
    service: str | None,
    rate_window: str,
    check: str,
    namespace: str | None = None,
) -> str:
    """Fill ``template``'s placeholders for ``side``; ``ArgumentError`` if one has no value.

    ``namespace`` narrows ``{selector}`` to one namespace's pods: identical pod templates in two
    namespaces share their pod-template hash, and their series must not mix.
    """
    scope = f'namespace="{escape_label_value(namespace)}",' if namespace else ""
    values: dict[str, str | None] = {
        "service": None if service is None else escape_label_value(service),
        "version": escape_label_value(side.value) if side.label == VERSION_LABEL else None,
        "hash": escape_label_value(side.value) if side.label == HASH_LABEL else None,
        "selector": scope
        + (f'service="{escape_label_value(service)}",' if service else "")
        + side.matcher,
        "rate_window": rate_window,
    }

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        value = values.get(name)
        if value is None:
            given = "a pod-template hash" if side.label == HASH_LABEL else "a version"
            hint = {
                "service": "set `service:` in the checks file or pass a service",
                "version": f"the {side.role} side was given as {given}; use {{selector}}",
                "hash": f"the {side.role} side was given as {given}; use {{selector}}",
            }[name]
            raise ArgumentError(f"check {check!r} uses {{{name}}} but it has no value: {hint}")
        return value

    # One pass: a substituted value is never scanned for placeholders again.
    return _PLACEHOLDER.sub(fill, template)


class Score(_Frozen):
    """Weighted share of judged checks that passed: at least ``pass_`` is Successful."""

    pass_: float = Field(default=0.95, alias="pass", gt=0, le=1)
    marginal: float = Field(default=0.75, ge=0, le=1)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _ordered(self) -> Score:
        if self.marginal > self.pass_:
            raise ValueError(f"marginal ({self.marginal}) must not exceed pass ({self.pass_})")
        return self


class CheckSet(_Frozen):
    """A checks file: the checks and the settings they share."""

    service: str | None = None
    step: Seconds = 20.0
    rate_window: PromQLDuration = "20s"
    min_coverage: float = Field(0.8, gt=0, le=1)
    min_samples: int = Field(4, ge=2)  # distribution: fewer finite steps per side is NoData
    alpha: float = Field(0.05, gt=0, lt=0.5)
    score: Score = Field(default_factory=lambda: Score.model_validate({}))
    groups: dict[str, float] = Field(default_factory=dict)  # group weights, as Kayenta's
    query_timeout: Seconds = 10.0
    checks: tuple[Check, ...] = Field(min_length=1)
    source: str = "<memory>"

    @model_validator(mode="after")
    def _unique_and_valid(self) -> CheckSet:
        names = [c.name for c in self.checks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"check names must be unique; repeated: {', '.join(duplicates)}")
        if self.service is not None and not _LABEL_VALUE.fullmatch(self.service):
            raise ValueError(f"service {self.service!r} is not a plain label value")
        window = parse_duration(self.rate_window, what="rate_window")
        if self.step < window:
            # rate()/increase() over a range longer than the step: neighbouring samples share
            # most of their data, and every test would see far more evidence than there is.
            raise ValueError(
                f"step {format_duration(self.step)} is shorter than rate_window "
                f"{self.rate_window}: samples would overlap; make step at least the rate window"
            )
        for name, weight in self.groups.items():
            if not (weight > 0 and math.isfinite(weight)):
                raise ValueError(f"group {name!r} has weight {weight}; want a positive number")
        unknown = sorted({c.group for c in self.checks} - set(self.groups)) if self.groups else []
        if unknown:
            raise ValueError(
                f"check group {unknown[0]!r} has no weight in `groups`; groups there: "
                + ", ".join(self.groups)
            )
        return self

    def group_weight(self, group: str) -> float:
        return self.groups.get(group, 1.0)

    def select(self, names: list[str]) -> CheckSet:
        """Only the named checks, in the file's order; ``ArgumentError`` for an unknown name."""
        known = [c.name for c in self.checks]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ArgumentError(
                f"unknown check {unknown[0]!r} in {self.source}; checks there: {', '.join(known)}"
            )
        return self.model_copy(update={"checks": tuple(c for c in self.checks if c.name in names)})


def load_checks(path: Path | None = None) -> CheckSet:
    """Read and validate a checks file (default: the demo services' ``analysis/checks.yaml``)."""
    path = DEFAULT_CHECKS if path is None else path
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CheckError(f"cannot read checks file {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise CheckError(f"checks file {path} is not valid YAML: {exc}") from exc
    return parse_checks(raw, source=str(path))


def parse_checks(raw: Any, *, source: str = "<memory>") -> CheckSet:
    """Validate already-loaded YAML; every problem is listed with its place in the file."""
    if not isinstance(raw, dict):
        raise CheckError(f"checks file {source} must be a mapping with a `checks:` list")
    try:
        return CheckSet.model_validate({**raw, "source": source})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(part) for part in err["loc"]) or "(top level)"
            message = err["msg"].removeprefix("Value error, ")
            lines.append(f"  {where}: {message}")
        raise CheckError(f"checks file {source} is invalid:\n" + "\n".join(lines)) from exc

