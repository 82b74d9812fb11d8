"""The GitOps tree (``gitops/``): render it as Argo CD would, check it, bump versions, deploy it.

Rendering reads the child Applications under ``gitops/apps/<env>/`` and runs the pinned Helm
(the release Argo CD itself renders with) exactly as each Application says: its chart path,
release name, value files and parameters. Checks over the rendered objects are pure functions.
``bump`` edits a version file through ruamel.yaml's round trip, so comments, order and quoting
survive and the diff is the changed value alone. ``deploy`` server-side applies what the version
file says to the current target with ``kubectl`` and waits for the Rollouts through
``harness.rollouts``; this module never talks to the API server any other way.
"""

from __future__ import annotations

import difflib
import io
import re
import shutil
import subprocess
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import ScalarString

from harness.errors import ConfigError, HarnessError, NotFound, TargetError, indent_tail
from harness.settings import Settings
from harness.targets import builds

if TYPE_CHECKING:
    from harness.rollouts import Rollouts

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
class Application:
    """One child Argo CD Application: what it renders, with which values, to which namespace."""

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

    def applications(self, env: str) -> list[Application]:
        """The child Applications of one environment, from ``apps/<env>/*.yaml``."""
        self.version_file(env)
        found = []
        for file in sorted((self.root / "apps" / env).glob("*.yaml")):
            for doc in _load_yaml_all(file):
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
            objects.extend(_load_yaml_all(file))
        return objects

    def render(
        self, env: str, *, helm: Path, namespace: str | None = None, flavour: str = "default"
    ) -> list[dict[str, Any]]:
        """Every object the environment's child Applications render, in apply order."""
        objects: list[dict[str, Any]] = []
        for app in self.applications(env):
            objects.extend(
                _helm_template(helm, app, namespace=namespace or app.namespace, flavour=flavour)
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


# -- applying to a cluster -------------------------------------------------------------------


@dataclass(frozen=True)
class Kubectl:
    """The kubectl binary bound to one kubeconfig and context."""

    binary: Path
    kubeconfig: Path | None
    context: str | None

    def run(self, *argv: str, stdin: str | None = None) -> str:
        command = [str(self.binary)]
        if self.kubeconfig is not None:
            command.append(f"--kubeconfig={self.kubeconfig}")
        if self.context:
            command.append(f"--context={self.context}")
        command.extend(argv)
        result = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise TargetError(
                f"kubectl failed (exit {result.returncode})\n  command: {' '.join(command)}\n"
                + indent_tail(result.stderr or result.stdout, lines=30)
            )
        return result.stdout

    def apply(
        self, objects: Iterable[Mapping[str, Any]], *, namespace: str, dry_run: bool = False
    ) -> str:
        """Server-side apply every object into ``namespace`` (``dry_run``: the server checks
        everything, schemas and admission included, and stores nothing)."""
        placed = [_in_namespace(obj, namespace) for obj in objects]
        argv = [
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=bgh",
            "-n",
            namespace,
            "-f",
            "-",
        ]
        if dry_run:
            argv.append("--dry-run=server")
        return self.run(*argv, stdin=yaml.safe_dump_all(placed, sort_keys=False))

    def ensure_namespace(self, namespace: str) -> None:
        """Create or keep ``namespace``, labelled for Istio's sidecar injection: the demo
        system's routes only apply to pods with a sidecar, in every namespace it runs in."""
        manifest = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {"istio-injection": "enabled"}},
        }
        self.run(
            "apply",
            "--server-side",
            "--field-manager=bgh",
            "-f",
            "-",
            stdin=yaml.safe_dump(manifest),
        )


def helm_binary(settings: Settings, report: Report = lambda _line: None) -> Path:
    """The pinned Helm, built from the module proxy on first use and cached."""
    built = builds.ensure_built(
        builds.HELM,
        cache_dir=settings.cache_dir,
        go=settings.local.go,
        timeout=settings.timeout("build"),
        report=report,
    )
    return built.path("helm")


def kubectl_for(settings: Settings) -> Kubectl:
    """kubectl for the current target: the one the local or kind target built, else PATH's."""
    kubeconfig = settings.kubeconfig
    if settings.target == "local":
        from harness.targets.local import LocalTarget

        kubeconfig = kubeconfig or LocalTarget(settings).kubeconfig
        binary = builds.KUBERNETES.install_dir(settings.cache_dir) / "kubectl"
        if not binary.is_file():
            raise ConfigError(
                f"kubectl of the local target is not built ({binary}); run `bgh up` first"
            )
        return Kubectl(binary, kubeconfig, settings.context)
    if settings.target == "kind":
        from harness.targets.kind import KindTarget

        kind = KindTarget(settings)
        if not kind.kubectl_path().is_file():
            raise ConfigError(
                f"kubectl of the kind target is not built ({kind.kubectl_path()}); "
                "run `bgh up --target kind` first"
            )
        return Kubectl(kind.kubectl_path(), kubeconfig or kind.kubeconfig, settings.context)
    found = shutil.which("kubectl")
    if found is None:
        raise ConfigError(f"the {settings.target} target needs kubectl on PATH")
    return Kubectl(Path(found), kubeconfig, settings.context)


def flavour_for(settings: Settings) -> str:
    """The chart's ``flavour`` value: on kind the analysis server runs in the cluster."""
    return "kind" if settings.target == "kind" else "default"


@dataclass(frozen=True)
class Deployed:
    """One Rollout after a deploy: its name, version and the phase it settled in."""

    name: str
    image: str
    phase: str


def deploy(settings: Settings, env: str, *, report: Report = lambda _line: None) -> list[Deployed]:
    """Render ``env``, server-side apply it to the current target, wait for every Rollout.

    A Rollout applied for the first time must become Healthy. One that was already there and
    whose pod template changed starts a blue-green release, which with manual promotion waits on
    preview: it must become Paused with the new version on preview (or Healthy, when nothing in
    its template changed).
    """
    from harness.kube import ROLLOUT, SERVICE, Kube
    from harness.rollouts import Rollouts

    tree = GitOps(settings.gitops_dir)
    versions = tree.read_versions(env)
    namespace = settings.namespace
    objects = tree.render(
        env, helm=helm_binary(settings, report), namespace=namespace, flavour=flavour_for(settings)
    )
    found = problems(objects, versions)
    if found:
        raise ConfigError(
            f"{versions.file} renders objects that would not work:\n  " + "\n  ".join(found)
        )
    kubectl = kubectl_for(settings)
    kubectl.ensure_namespace(namespace)
    kube = Kube(kubeconfig=kubectl.kubeconfig, context=settings.context, namespace=namespace)
    existing = {item["metadata"]["name"] for item in kube.list(ROLLOUT)[0]}
    objects = _keep_rollout_selectors(objects, kube.list(SERVICE)[0])
    kubectl.apply(objects, namespace=namespace)
    report(f"applied {len(objects)} objects of {env} to namespace {namespace}")
    rollouts = Rollouts(kube, timeout=settings.timeout("rollout"))
    names = [obj["metadata"]["name"] for obj in objects if obj["kind"] == "Rollout"]
    return settle(rollouts, names, existing, report=report)


def settle(
    rollouts: Rollouts,
    names: Sequence[str],
    existing: Collection[str],
    *,
    report: Report = lambda _line: None,
) -> list[Deployed]:
    """Wait for each Rollout after its objects were applied (by the harness or by Argo CD).

    One that was not there before (not in ``existing``) must become Healthy; one that was must
    become Healthy, or Paused with the new version on preview, or be under its pre-promotion
    analysis. Degraded fails at once.
    """
    from harness.rollouts import Phase, phase_of

    deployed = []
    for name in names:
        if name in existing:
            settled = rollouts.wait_for(
                name,
                _released,
                expecting="Healthy, or the new version on preview (Paused, or being analysed)",
                fail_if=_degraded,
            ).value
        else:
            settled = rollouts.wait_for_phase(name, Phase.HEALTHY)
        phase = phase_of(settled)[0].value
        image = next(iter(settled.images.values()), "")
        report(f"{name}: {phase} ({image})")
        deployed.append(Deployed(name, image, phase))
    return deployed


def _keep_rollout_selectors(
    objects: Sequence[Mapping[str, Any]], live_services: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The objects, each Service keeping the pod-template hash Argo Rollouts put in its selector.

    A Service's selector is an atomic map, so a server-side apply without the hash would drop it;
    an active Service without a hash makes the controller switch to the new ReplicaSet at once,
    skipping the manual-promotion pause. (Argo CD's client-side apply keeps keys it never set.)
    """
    from harness.kube import HASH_LABEL

    hashes = {
        s["metadata"]["name"]: (s.get("spec") or {}).get("selector", {}).get(HASH_LABEL)
        for s in live_services
    }
    kept = []
    for obj in objects:
        live_hash = hashes.get(obj["metadata"]["name"]) if obj.get("kind") == "Service" else None
        if live_hash:
            spec = dict(obj["spec"])
            spec["selector"] = {**spec.get("selector", {}), HASH_LABEL: live_hash}
            obj = {**obj, "spec": spec}
        kept.append(dict(obj))
    return kept


def _released(rollout: Any) -> bool:
    """Settled after an apply: Healthy, or the new version on preview, either Paused or under
    its pre-promotion analysis (which pauses it only once it ends)."""
    from harness.rollouts import Phase, phase_of

    phase = phase_of(rollout)[0]
    if phase is Phase.HEALTHY:
        return True
    on_preview = rollout.current_hash != rollout.stable_hash
    if phase is Phase.PAUSED:
        return bool(on_preview)
    analysis = rollout.pre_promotion_analysis
    return bool(
        on_preview
        and rollout.preview_selector == rollout.current_hash
        and analysis is not None
        and rollout.current_hash in analysis.name
        and analysis.status in ("Pending", "Running")
    )


def _degraded(rollout: Any) -> str | None:
    from harness.rollouts import Phase, phase_of

    phase, message = phase_of(rollout)
    return f"the rollout is Degraded: {message}" if phase is Phase.DEGRADED else None


def commit(bump: Bump) -> str:
    """``git commit`` the bumped version file alone (other staged changes stay staged)."""
    directory = bump.file.parent
    git(
        directory,
        "commit",
        "--quiet",
        "-m",
        bump.message,
        "--",
        bump.file.name,
        what=f"git commit of {bump.file}",
    )
    return git(directory, "rev-parse", "--short", "HEAD").strip()


def git(where: Path, *args: str, what: str | None = None) -> str:
    """Run ``git -C where args``; its output, or a HarnessError saying ``what`` failed (``git
    <subcommand>`` unless told) with git's own message and the command."""
    argv = ["git", "-C", str(where), *args]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise HarnessError(
            f"{what or f'git {args[0]}'} failed (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()}\n  command: {' '.join(argv)}"
        )
    return result.stdout


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
    docs = _load_yaml_all(file)
    return docs[0] if docs else {}


def _load_yaml_all(file: Path) -> list[dict[str, Any]]:
    try:
        return [doc for doc in yaml.safe_load_all(file.read_text()) if doc]
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {file}: {exc}") from exc


def _application(root: Path, file: Path, doc: Mapping[str, Any]) -> Application:
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
    return Application(
        name=name,
        file=file,
        chart=chart,
        release=str(helm.get("releaseName") or name),
        value_files=value_files,
        parameters={str(p["name"]): str(p["value"]) for p in helm.get("parameters") or []},
        namespace=str((spec.get("destination") or {}).get("namespace") or "default"),
    )


def _helm_template(
    helm: Path, app: Application, *, namespace: str, flavour: str
) -> list[dict[str, Any]]:
    argv = [str(helm), "template", app.release, str(app.chart), "--namespace", namespace]
    for value_file in app.value_files:
        argv += ["--values", str(value_file)]
    for key, value in {**app.parameters, "flavour": flavour}.items():
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


def _in_namespace(obj: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    placed = dict(obj)
    placed["metadata"] = {**(obj.get("metadata") or {}), "namespace": namespace}
    return placed
