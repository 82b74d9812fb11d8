"""One settings object for the whole harness, read once from defaults, environment and options.

Precedence: field defaults, then ``BGH_*`` environment variables (nested with ``__``, e.g.
``BGH_TIMEOUTS__ROLLOUT=180``), then explicit keyword overrides from the CLI or the pytest plugin.
Nothing else in ``harness/`` reads ``BGH_*`` variables, and nothing writes the environment. The
object is frozen once loaded: a variation (another namespace for one scenario) is a copy. A bad
value becomes a ``ConfigError`` that names the variable, the value given and an example of a good
one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from harness import versions
from harness.errors import ConfigError

ENV_PREFIX = "BGH_"
PROJECT_ROOT = Path(__file__).resolve().parents[1]

TargetName = Literal["local", "kind", "existing"]


class Timeouts(BaseModel):
    """Deadlines per kind of operation, in seconds, before ``timeout_scale`` is applied."""

    model_config = ConfigDict(frozen=True)

    rollout: float = Field(120.0, gt=0, description="Rollout phase and revision waits, seconds.")
    probe: float = Field(30.0, gt=0, description="Eventual HTTP probes through gateway A, seconds.")
    analysis: float = Field(300.0, gt=0, description="AnalysisRun and gate waits, seconds.")
    sync: float = Field(180.0, gt=0, description="Argo CD sync and health waits, seconds.")
    up: float = Field(
        120.0, gt=0, description="Each component of `bgh up` becoming ready, seconds."
    )
    build: float = Field(
        3600.0, gt=0, description="Building one control-plane binary set, seconds."
    )
    api_connect: float = Field(
        5.0, gt=0, description="Connecting to the API server, per request, seconds."
    )
    api_read: float = Field(
        30.0,
        gt=0,
        description=(
            "Waiting for the API server's answer to one request (a wait's own deadline is "
            "shorter when less time is left), seconds."
        ),
    )


class LocalOptions(BaseModel):
    """How the Docker-free local target is laid out."""

    model_config = ConfigDict(frozen=True)

    nodes: int = Field(3, ge=1, le=50, description="Number of simulated (kwok) nodes.")
    go: str = Field("go", min_length=1, description="The Go command used to build components.")
    # Picked free by default, so two targets on one machine do not collide: the charts the
    # harness deploys on the local target are given the URLs `up` recorded (chart_values).
    prometheus_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Loopback port of the local target's Prometheus; 0 picks a free one "
        "(kept in state.json; `bgh status` shows it).",
    )
    analysis_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Loopback port of the local target's analysis server; 0 picks a free one "
        "(kept in state.json; `bgh status` shows it).",
    )
    dataplane_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Loopback port of the data plane's /healthz and /state; 0 picks a free one.",
    )
    argocd: bool = Field(
        False,
        description=(
            "Also run Argo CD (application controller, repo server, Redis) and sync the root "
            "app from a local Git repository seeded from gitops/ (`bgh up --with-argocd`)."
        ),
    )


class KindOptions(BaseModel):
    """How the kind target gets its images and reaches gateway A."""

    images: Literal["auto", "build", "pull"] = Field(
        "auto",
        description=(
            "Where the kind target's images come from: pull (the pinned upstream images), "
            "build (made on this machine from the Go module proxy and debootstrap, for machines "
            "that reach no image registry) or auto (build where bgh set Docker up itself)."
        ),
    )
    proxy_port: int = Field(
        18001,
        ge=1,
        le=65535,
        description=(
            "Loopback port of the `kubectl proxy` through which probes reach gateway A and the "
            "harness reaches Prometheus."
        ),
    )


class Settings(BaseSettings):
    """Every knob of the harness. Field descriptions double as the README's settings table."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
        frozen=True,
    )

    target: TargetName = Field("local", description="Where to run: local, kind or existing.")
    kubeconfig: Path | None = Field(
        None, description="Kubeconfig file; the local and kind targets write their own."
    )
    context: str | None = Field(None, description="Kubeconfig context; none means the current one.")
    impersonate: str | None = Field(
        None,
        min_length=1,
        description="Act as this user on the API server, as `kubectl --as` does (e.g. "
        "system:serviceaccount:demo:bgh-runbooks); the kubeconfig's own user needs the "
        "impersonate verb. None: the kubeconfig's user.",
    )
    namespace: str = Field(
        "demo",
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=63,
        description="Namespace of the demo system's Rollouts.",
    )
    state_dir: Path = Field(
        Path(".bgh"),
        description=(
            "Where a target keeps its kubeconfig, logs and process state; a relative path is "
            "taken from the project root, not the current directory."
        ),
    )
    cache_dir: Path = Field(
        Path.home() / ".cache" / "bgh",
        description="Where built binaries are cached, keyed by versions (outside the work tree).",
    )
    gitops_dir: Path = Field(
        Path("gitops"),
        description="The GitOps tree: app of apps, charts, per-environment version files.",
    )
    gateway_url: str | None = Field(
        None,
        description="Gateway A through its active Service, on the existing target; when "
        "unset, found from the cluster (LoadBalancer, Ingress, Istio Gateway, NodePort).",
    )
    gateway_preview_url: str | None = Field(
        None,
        description="Gateway A through its preview Service, on the existing target; when "
        "unset, found from the cluster like the active one.",
    )
    settle: bool = Field(
        False,
        description="On the existing target, before changing a namespace that is not settled: "
        "restore what an earlier run of the harness left there (`--bgh-settle`); it never "
        "promotes someone else's release.",
    )
    lock_wait: float = Field(
        0.0,
        ge=0,
        description="On the existing target, how long a run waits for another run's Lease on "
        "the namespace before refusing, seconds; 0 refuses at once.",
    )
    rollouts_version: str = Field(
        versions.ARGO_ROLLOUTS,
        description="The Argo Rollouts release the local target builds and runs (controller, "
        f"plugin, CRDs): {versions.ARGO_ROLLOUTS} or one of "
        f"{', '.join(versions.ARGO_ROLLOUTS_OTHERS)}; each is built once into the cache.",
    )
    prometheus_url: str | None = Field(
        None, description="Prometheus base URL; the local target sets it itself."
    )
    timeout_scale: float = Field(
        1.0, gt=0, le=100, description="Multiplies every timeout (slow machines: 2)."
    )
    timeouts: Timeouts = Field(default_factory=Timeouts)  # type: ignore[arg-type]
    local: LocalOptions = Field(default_factory=LocalOptions)  # type: ignore[arg-type]
    kind: KindOptions = Field(default_factory=KindOptions)  # type: ignore[arg-type]

    @field_validator("rollouts_version")
    @classmethod
    def _a_pinned_release(cls, value: str) -> str:
        known = (versions.ARGO_ROLLOUTS, *versions.ARGO_ROLLOUTS_OTHERS)
        if value not in known:
            raise ValueError(f"no pinned build of Argo Rollouts {value}; expected one of {known}")
        return value

    @field_validator("state_dir")
    @classmethod
    def _from_project_root(cls, value: Path) -> Path:
        # `bgh down` from a sub-directory must find what `bgh up` started at the top.
        return value if value.is_absolute() else PROJECT_ROOT / value

    @property
    def deadlines(self) -> Timeouts:
        """Every timeout with ``timeout_scale`` applied, in seconds: ``deadlines.rollout``."""
        scaled = {name: value * self.timeout_scale for name, value in self.timeouts}
        return Timeouts.model_validate(scaled)


_EXAMPLES: dict[str, str] = {
    "target": "local",
    "namespace": "demo",
    "timeout_scale": "2",
    "lock_wait": "900",
    "settle": "true",
    "rollouts_version": "v1.9.3",
    "timeouts": "120",
    "local": "3",
}


# The checkout this package was loaded from (an editable install: the project directory).
PROJECT_DIR = Path(__file__).resolve().parents[1]


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment plus ``overrides``; bad values raise ConfigError.

    The default ``state_dir`` and ``gitops_dir`` are the project's own (``.bgh``, ``gitops``
    beside ``harness/``), whatever the working directory; a path the user gives (variable or
    option) is taken as given, relative to the working directory like any command's argument.
    """
    clean = {key: value for key, value in overrides.items() if value is not None}
    try:
        settings = Settings(**clean)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, clean)) from exc
    anchored = {
        name: PROJECT_DIR / getattr(settings, name)
        for name in ("state_dir", "gitops_dir")
        if name not in settings.model_fields_set and not getattr(settings, name).is_absolute()
    }
    return settings.model_copy(update=anchored) if anchored else settings


def _explain(exc: ValidationError, overrides: dict[str, Any]) -> str:
    lines = ["invalid settings:"]
    for error in exc.errors():
        path = [str(part) for part in error["loc"]]
        variable = ENV_PREFIX + "__".join(part.upper() for part in path)
        source = f"option --{path[0].replace('_', '-')}" if path[0] in overrides else variable
        example = _EXAMPLES.get(path[-1], _EXAMPLES.get(path[0], ""))
        hint = f" (e.g. {variable}={example})" if example else ""
        given = error.get("input")
        lines.append(f"  {source}={given!r}: {error['msg']}{hint}")
    return "\n".join(lines)


def settings_table() -> str:
    """The README's settings table, generated from the class so doc and default cannot drift."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]

    def add(prefix: str, model: type[BaseModel], instance: BaseModel) -> None:
        for name, field in model.model_fields.items():
            value = getattr(instance, name)
            if isinstance(value, BaseModel):
                add(f"{prefix}{name.upper()}__", type(value), value)
                continue
            default = "(none)" if value is None else str(value)
            if name == "cache_dir":
                default = "~/.cache/bgh"
            rows.append(f"| `{prefix}{name.upper()}` | `{default}` | {field.description} |")

    add(ENV_PREFIX, Settings, Settings.model_construct(**_defaults()))
    return "\n".join(rows)


def _defaults() -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        values[name] = field.get_default(call_default_factory=True)
    return values
