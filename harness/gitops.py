"""The GitOps tree (``gitops/``): render it as Argo CD would, check it, bump versions.

Rendering reads the child Applications under ``gitops/apps/<env>/`` and runs the pinned Helm
(the release Argo CD itself renders with) exactly as each Application says: its chart path,
release name, value files and parameters. Checks over the rendered objects are pure functions.
``bump`` edits a version file through ruamel.yaml's round trip, so comments, order and quoting
survive and the diff is the changed value alone. This module reads and writes files and runs
Helm; it never talks to a cluster (``harness.delivery`` takes what it renders there).
"""

from __future__ import annotations

import difflib
import io
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import ScalarString

from harness import builds
from harness.errors import ConfigError, NotFound
from harness.settings import Settings

Report = Callable[[str], None]

IMAGE_REGISTRY = "ghcr.io/bluegreen-harness"
# A version becomes an image tag (no "+": tags cannot hold it) and the services' VERSION.
VERSION = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z]+(\.[0-9A-Za-z]+)*)?$")
# A root version becomes the pod label root-version: at most 63 characters, alphanumeric ends.
ROOT_VERSION = re.compile(
    r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z]+(\.[0-9A-Za-z]+)*)?$"
)
# Where the tree sits in the repository, as the Applications' source.path spell it.
REPO_TREE = "gitops"
# Objects a kubectl apply must create before those that name them.
APPLY_ORDER = ("Namespace", "AnalysisTemplate", "Service", "VirtualService", "Rollout")


@dataclass(frozen=True)
class ChildApplication:
    """What one child Argo CD Application asks to render: chart, values, namespace (its spec,
    read from the file; ``harness.argocd.Application`` is its live status)."""

    name: str
    file: Path
    chart: Path
    release: str
    value_files: tuple[Path, ...]
    parameters: Mapping[str, str]
    namespace: str


@dataclass(frozen=True)
class Versions:
    """What an environment's version file says."""

    env: str
    file: Path
    root_version: str
    services: Mapping[str, str]
    greeting: str = ""


@dataclass(frozen=True)
class Bump:
    """A version file before and after a bump; ``diff`` is empty when nothing changed."""

    file: Path
    before: str
    after: str
    diff: str
    message: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


class GitOps:
    """The tree under one directory (``Settings.gitops_dir``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    # -- environments and version files -----------------------------------------------------

    def environments(self) -> list[str]:
        return sorted(
            p.name.removesuffix("_version.yaml") for p in self._envs_dir().glob("*_version.yaml")
        )

    def version_file(self, env: str) -> Path:
        known = self.environments()
        if env not in known:
            raise NotFound(
                f'unknown environment "{env}"; known: {", ".join(known) or "none"} '
                f"(files {self._envs_dir()}/<env>_version.yaml)."
            )
        return self._envs_dir() / f"{env}_version.yaml"

    def read_versions(self, env: str) -> Versions:
        file = self.version_file(env)
        data = _load_yaml(file)
        services = data.get("services") or {}
        return Versions(
            env=env,
            file=file,
            root_version=str(data.get("rootVersion", "")),
            greeting=str(data.get("greeting", "")),
            services={
                name: str((entry or {}).get("version", "")) for name, entry in services.items()
            },
        )

    def _envs_dir(self) -> Path:
        envs = self.root / "envs"
        if not envs.is_dir():
            raise ConfigError(
                f"no GitOps tree at {self.root.resolve()}: {envs} is missing; run from the "
                "repository root or set BGH_GITOPS_DIR (e.g. BGH_GITOPS_DIR=gitops)"
            )
        return envs

    # -- bump -------------------------------------------------------------------------------

    def service_faults(self, env: str, service: str) -> dict[str, str]:
        """The faults the version file plays on ``service`` alone (``services.<service>.faults``),
        empty when it plays none."""
        entry = (_load_yaml(self.version_file(env)).get("services") or {}).get(service) or {}
        return {str(k): str(v) for k, v in (entry.get("faults") or {}).items()}

    def bump(
        self,
        env: str,
        service: str | None = None,
        version: str | None = None,
        *,
        root_version: str | None = None,
        greeting: str | None = None,
        write: bool = True,
    ) -> Bump:
        """Set a service's version, the root version and/or gateway A's greeting in the env's
        version file, keeping its comments and order."""
        file = self.version_file(env)
        if (service is None) != (version is None):
            raise ConfigError("give a service and its version together (e.g. service-b 1.1.0)")
        if service is None and root_version is None and greeting is None:
            raise ConfigError(
                "nothing to change: give a service and version, a root version or a greeting"
            )
        if greeting is not None and (not greeting.strip() or "\n" in greeting):
            raise ConfigError(f"greeting {greeting!r}: expected one non-empty line of text")
        if version is not None and not VERSION.fullmatch(version):
            raise ConfigError(
                f'malformed version "{version}"; expected MAJOR.MINOR.PATCH with an optional '
                "-prerelease, e.g. 1.1.0 (it becomes the image tag "
                f"{IMAGE_REGISTRY}/{service}:<version>)."
            )
        if root_version is not None and not ROOT_VERSION.fullmatch(root_version):
            raise ConfigError(
                f'malformed root version "{root_version}"; expected v and MAJOR.MINOR.PATCH with '
                "an optional -prerelease, e.g. v2.2.0 (it becomes the pod label root-version)."
            )
        before = file.read_text()
        round_trip = round_trip_yaml()
        data = round_trip.load(before)
        services = data.get("services") if isinstance(data, dict) else None
        if service is not None and version is not None:
            if not isinstance(services, dict) or service not in services:
                known = ", ".join(sorted(services or {})) or "none"
                raise NotFound(f'unknown service "{service}" in {file}; known: {known}.')
            entry = services[service]
            entry["version"] = _same_style(entry.get("version"), version)
        if greeting is not None:
            data["greeting"] = _same_style(data.get("greeting"), greeting)
        if root_version is not None:
            data["rootVersion"] = _same_style(data.get("rootVersion"), root_version)
        changes = [f"{service} {version}"] if service else []
        changes += [f"root version {root_version}"] if root_version else []
        changes += [f"greeting {greeting!r}"] if greeting is not None else []
        return _write(file, before, round_trip, data, f"{env}: " + ", ".join(changes), write)

    def set_values(self, env: str, values: Mapping[str, object], *, write: bool = True) -> Bump:
        """Set dotted keys (``analysis.prePromotion``, ``faults.errorRate``) in the version file,
        creating the maps on the way; comments and every other byte stay as they were."""
        file = self.version_file(env)
        before = file.read_text()
        round_trip = round_trip_yaml()
        data = round_trip.load(before)
        for dotted, value in values.items():
            *parents, leaf = dotted.split(".")
            node = data
            for key in parents:
                if not isinstance(node.get(key), dict):
                    node[key] = {}
                node = node[key]
            node[leaf] = value if not isinstance(value, str) else _same_style(node.get(leaf), value)
        listing = ", ".join(f"{k}={v}" for k, v in values.items())
        return _write(file, before, round_trip, data, f"{env}: {listing}", write)

    # -- applications and rendering ---------------------------------------------------------

    def applications(self, env: str) -> list[ChildApplication]:
        """The child Applications of one environment, from ``apps/<env>/*.yaml``."""
        self.version_file(env)
        found = []
        for file in sorted((self.root / "apps" / env).glob("*.yaml")):
            for doc in read_documents(file):
                if doc.get("kind") == "Application":
                    found.append(_application(self.root, file, doc))
        if not found:
            raise ConfigError(
                f"environment {env} has no child Applications in {self.root / 'apps' / env}"
            )
        return found

    def root_application(self, env: str) -> dict[str, Any]:
        """The root Application of one environment: ``app-of-apps/root-<env>.yaml``."""
        self.version_file(env)
        return _load_yaml(self.root / "app-of-apps" / f"root-{env}.yaml")

    def application_objects(self, env: str) -> list[dict[str, Any]]:
        """The Application objects themselves, as the root app would apply them."""
        objects = []
        for file in sorted((self.root / "apps" / env).glob("*.yaml")):
            objects.extend(read_documents(file))
        return objects

    def render(
        self,
        env: str,
        *,
        helm: Path,
        namespace: str | None = None,
        values: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Every object the environment's child Applications render, in apply order; ``values``
        are set on every chart after the Applications' own (a target's ``chart_values``)."""
        objects: list[dict[str, Any]] = []
        for app in self.applications(env):
            objects.extend(
                _helm_template(helm, app, namespace=namespace or app.namespace, values=values or {})
            )
        return sorted(objects, key=_apply_rank)


# -- checks over rendered objects ------------------------------------------------------------


def problems(objects: Sequence[Mapping[str, Any]], versions: Versions) -> list[str]:
    """What is wrong with an environment's rendered objects; empty when nothing is.

    Every Rollout is blue-green with manual promotion, its Services exist and select its pods,
    its analysis templates exist, its image tag and root-version label are the version file's;
    every VirtualService host and destination is a Service; every service in the version file
    has a Rollout.
    """
    by_kind: dict[str, dict[str, Mapping[str, Any]]] = {}
    for obj in objects:
        by_kind.setdefault(str(obj.get("kind")), {})[str(obj["metadata"]["name"])] = obj
    services = by_kind.get("Service", {})
    templates = by_kind.get("AnalysisTemplate", {})
    rollouts = by_kind.get("Rollout", {})
    found: list[str] = []
    for name, rollout in sorted(rollouts.items()):
        found.extend(_rollout_problems(name, rollout, services, templates, versions))
    for name in sorted(set(versions.services) - set(rollouts)):
        found.append(f"{versions.file.name} lists {name}, but no Rollout {name} was rendered")
    for name, vs in sorted(by_kind.get("VirtualService", {}).items()):
        spec = vs.get("spec") or {}
        for host in spec.get("hosts") or []:
            if host not in services:
                found.append(f"VirtualService {name}: host {host} is not a Service")
        for protocol in ("http", "tcp", "tls"):
            for route in spec.get(protocol) or []:
                for dest in route.get("route") or []:
                    host = (dest.get("destination") or {}).get("host")
                    if host not in services:
                        found.append(f"VirtualService {name}: destination {host} is not a Service")
    return found


def _rollout_problems(
    name: str,
    rollout: Mapping[str, Any],
    services: Mapping[str, Mapping[str, Any]],
    templates: Mapping[str, Mapping[str, Any]],
    versions: Versions,
) -> list[str]:
    found = []
    spec = rollout.get("spec") or {}
    blue_green = (spec.get("strategy") or {}).get("blueGreen")
    if blue_green is None:
        return [f"Rollout {name}: not a blue-green Rollout"]
    if blue_green.get("autoPromotionEnabled", True) is not False:
        found.append(f"Rollout {name}: autoPromotionEnabled must be false (manual promotion)")
    pod_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    if any(pod_labels.get(k) != v for k, v in selector.items()):
        found.append(f"Rollout {name}: selector {dict(selector)} does not match its pod labels")
    for role in ("activeService", "previewService"):
        service_name = blue_green.get(role)
        service = services.get(service_name or "")
        if service is None:
            found.append(f"Rollout {name}: {role} {service_name} is not a rendered Service")
            continue
        service_selector = (service.get("spec") or {}).get("selector") or {}
        if not service_selector or any(pod_labels.get(k) != v for k, v in service_selector.items()):
            found.append(
                f"Rollout {name}: {role} {service_name} selects {dict(service_selector)}, "
                f"which its pods ({dict(pod_labels)}) do not match"
            )
    for when in ("prePromotionAnalysis", "postPromotionAnalysis"):
        for ref in (blue_green.get(when) or {}).get("templates") or []:
            if ref.get("templateName") not in templates:
                found.append(
                    f"Rollout {name}: {when} names AnalysisTemplate "
                    f"{ref.get('templateName')}, which is not rendered"
                )
    wanted = versions.services.get(name)
    images = [
        c.get("image", "")
        for c in ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    ]
    if wanted is None:
        found.append(f"Rollout {name}: not listed in {versions.file.name}")
    elif images != [f"{IMAGE_REGISTRY}/{name}:{wanted}"]:
        found.append(f"Rollout {name}: images {images}, but {versions.file.name} says {wanted}")
    if pod_labels.get("root-version") != versions.root_version:
        found.append(
            f"Rollout {name}: pod label root-version={pod_labels.get('root-version')}, but "
            f"{versions.file.name} says {versions.root_version}"
        )
    return found


def helm_binary(settings: Settings, report: Report = lambda _line: None) -> Path:
    """The pinned Helm, built from the module proxy on first use and cached."""
    built = builds.ensure_built(
        builds.HELM,
        cache_dir=settings.cache_dir,
        go=settings.local.go,
        timeout=settings.deadlines.build,
        report=report,
    )
    return built.path("helm")


# -- helpers ---------------------------------------------------------------------------------


def _write(file: Path, before: str, round_trip: YAML, data: Any, message: str, write: bool) -> Bump:
    """Dump ``data`` as ``file``'s new text, with its diff; written unless ``write`` is False."""
    out = io.StringIO()
    round_trip.dump(data, out)
    after = out.getvalue()
    name = _display(file)
    diff = "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=name if name.startswith("/") else f"a/{name}",
            tofile=name if name.startswith("/") else f"b/{name}",
        )
    )
    if write and after != before:
        file.write_text(after)
    return Bump(file, before, after, diff, message)


def round_trip_yaml() -> YAML:
    """ruamel.yaml set to write back this tree's files as they are written (indents, quotes)."""
    round_trip = YAML()
    round_trip.preserve_quotes = True
    round_trip.width = 4096  # never re-wrap a long line
    round_trip.indent(mapping=2, sequence=4, offset=2)
    return round_trip


def _same_style(old: object, new: str) -> object:
    """``new`` quoted as ``old`` was (a quoted "1.0.0" stays quoted)."""
    if isinstance(old, ScalarString):
        return type(old)(new)
    return new


def _display(file: Path) -> str:
    try:
        return str(file.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(file)


def _load_yaml(file: Path) -> dict[str, Any]:
    docs = read_documents(file)
    return docs[0] if docs else {}


def read_documents(file: Path) -> list[dict[str, Any]]:
    """Every YAML document of ``file`` (an Application, a version file), as plain data; a
    ConfigError naming the file when it cannot be read."""
    try:
        return [doc for doc in yaml.safe_load_all(file.read_text()) if doc]
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {file}: {exc}") from exc


def _application(root: Path, file: Path, doc: Mapping[str, Any]) -> ChildApplication:
    spec = doc.get("spec") or {}
    source = spec.get("source") or {}
    helm = source.get("helm") or {}
    name = str((doc.get("metadata") or {}).get("name", file.stem))
    path = str(source.get("path") or "")
    # Argo CD reads source.path from the repository root, where this tree is gitops/.
    if not path.startswith(REPO_TREE + "/"):
        raise ConfigError(
            f"{file}: Application {name} has source.path {path!r}; "
            f"expected {REPO_TREE}/charts/<chart>"
        )
    chart = root / path.removeprefix(REPO_TREE + "/")
    if not (chart / "Chart.yaml").is_file():
        raise ConfigError(f"{file}: Application {name} points at {chart}, which has no Chart.yaml")
    value_files = tuple((chart / v).resolve() for v in helm.get("valueFiles") or [])
    for value_file in value_files:
        if not value_file.is_file():
            raise ConfigError(
                f"{file}: Application {name} names value file {value_file}, which does not exist"
            )
    return ChildApplication(
        name=name,
        file=file,
        chart=chart,
        release=str(helm.get("releaseName") or name),
        value_files=value_files,
        parameters={str(p["name"]): str(p["value"]) for p in helm.get("parameters") or []},
        namespace=str((spec.get("destination") or {}).get("namespace") or "default"),
    )


def _helm_template(
    helm: Path, app: ChildApplication, *, namespace: str, values: Mapping[str, str]
) -> list[dict[str, Any]]:
    argv = [str(helm), "template", app.release, str(app.chart), "--namespace", namespace]
    for value_file in app.value_files:
        argv += ["--values", str(value_file)]
    for key, value in {**app.parameters, **values}.items():
        argv += ["--set", f"{key}={value}"]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ConfigError(
            f"Application {app.name} ({app.file}) does not render (exit {result.returncode}):\n"
            f"  {result.stderr.strip()}\n  command: {' '.join(argv)}"
        )
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _apply_rank(obj: Mapping[str, Any]) -> tuple[int, str]:
    kind = str(obj.get("kind"))
    rank = APPLY_ORDER.index(kind) if kind in APPLY_ORDER else len(APPLY_ORDER)
    return rank, str((obj.get("metadata") or {}).get("name", ""))
