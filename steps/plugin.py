"""The pytest plugin behind the runbooks (registered by entry point ``bgh``).

Options: ``--bgh-target local|kind|existing``, ``--bgh-namespace``, ``--bgh-artifacts``,
``--bgh-report`` (the runbook report, steps/report.py), ``--bgh-rollouts-version`` (the
controller release, steps/upstream.py). Fixtures:
``bgh_settings``, ``demo`` (the demo system in a namespace of its own, deployed from a copy of
gitops/, or the namespace given on ``existing``), ``rollouts``, ``gateway``, ``releases``.

A scenario tagged ``@gitops`` gets the demo system as Argo CD delivers it (local target only; Argo
CD is started if it is not running): a Git repository of its own seeded from gitops/, its root
Application applied, and releases that are commits pushed there (harness/argocd.py).

Safety on ``existing``: a scenario not tagged ``@readonly`` runs only in a namespace labelled
``bgh.dev/testing=true``; elsewhere it is skipped with the reason, and read-only ones still run.
Such a scenario runs under the run's Lease on the namespace, only when the namespace is settled
(or ``--bgh-settle`` settled what an earlier run left), and is restored and verified afterwards,
pass or fail (harness/guard.py); its releases write a scratch copy of gitops/, and its revision
numbers count from the revision each Rollout was on (docs/nightly.md).

On failure, before any fixture is torn down, the namespace's state is written under
``.artifacts/<feature>/<scenario>/`` (harness/artifacts.py) and summarised in the report. A
scenario whose demo system fails to deploy (a chart that does not render, an object the API
server refuses, a Rollout that never becomes Healthy) gets the same, whether the failure is
reported as the Given step's (the step asks for the fixture) or as a test's setup error. The
``rb-*`` namespace a scenario made is deleted afterwards whatever the outcome, or, with
``--bgh-keep-failed``, kept when the scenario failed, for a look at the live objects.

Progress: each step prints its duration as it ends, and each scenario its feature, name and
result as it finishes. Every step's duration, result and what the probes through gateway A saw
while it ran are kept for the runbook report, written at the end of the session.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.artifacts import collect_artifacts
from harness.delivery import ArgoCDDelivery
from harness.errors import HarnessError
from harness.git import GitRepository
from harness.guard import NamespaceGuard
from harness.kube import Forbidden, Kube
from harness.lease import default_identity
from harness.probes import Gateway
from harness.release import Releases
from harness.rollouts import Rollouts
from harness.settings import Settings, load_settings
from harness.target import Target
from harness.targets import target_for
from harness.targets.kind import KindTarget
from steps.report import ScenarioRecord, StepRecord, render

pytest_plugins = [
    "steps.rollout_steps",
    "steps.probe_steps",
    "steps.gitops_steps",
    "steps.provenance_steps",
    "steps.bluegreen_steps",
    "steps.upstream",
]

TESTING_LABEL = "bgh.dev/testing"
MARKERS = {
    "readonly": "changes nothing: safe on any cluster, the nightly checks",
    "analysis": "runs the pre-promotion analysis (Prometheus and the analysis server)",
    "gitops": "releases through the version files and Argo CD",
    "traffic": "plays steady user traffic through gateway A",
    "quiet": "needs gateway A without traffic: no isolation streams (the scenario says why)",
    "release_guide": "a step of the blue-green release guide",
    "slow": "takes more than half a minute",
    "mesh": "needs Istio's routing by source labels (A's preview pods reach B's and C's preview)",
    "spread": "needs at least two schedulable nodes (blue and green kept on different nodes)",
    "crash": "crashes a pod's process (the local data plane or, on kind, the node reaches it)",
}
_ARTIFACTS = pytest.StashKey[Path]()
_SYSTEM = pytest.StashKey["DemoSystem"]()
_FEATURE = pytest.StashKey[str]()
_WAIT_HANDLER = pytest.StashKey[logging.Handler]()
_STEP_STARTED = pytest.StashKey[float]()
_STEP_MARK = pytest.StashKey[int]()
_STEPS = pytest.StashKey[list[StepRecord]]()
_PLANNED = pytest.StashKey[list[tuple[str, str]]]()  # (keyword, name) of every step
_SCENARIO = pytest.StashKey[tuple[str, str]]()  # (feature, scenario) names
_ARTIFACT_FILES = pytest.StashKey[list[Path]]()
_SCENARIOS = pytest.StashKey[list[ScenarioRecord]]()
_GATEWAY = pytest.StashKey[Gateway]()
_FAILED = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bgh", "blue-green runbooks")
    group.addoption(
        "--bgh-target",
        choices=("local", "kind", "existing"),
        default=None,
        help="where the runbooks run (default: BGH_TARGET, else local)",
    )
    group.addoption(
        "--bgh-namespace",
        default=None,
        help="the namespace on the existing target (others make one per scenario)",
    )
    group.addoption(
        "--bgh-settle",
        action="store_true",
        default=None,
        help="on existing, restore what an earlier run left unsettled before starting "
        "(default: BGH_SETTLE); never promotes someone else's release",
    )
    group.addoption(
        "--bgh-artifacts",
        default=".artifacts",
        help="where a failed scenario's state is written (default: .artifacts)",
    )
    group.addoption(
        "--bgh-report",
        default=None,
        help="write the runbook report here: feature, scenario, step, what each probe saw (HTML)",
    )
    group.addoption(
        "--bgh-keep-failed",
        action="store_true",
        default=False,
        help="keep the namespace (and Argo CD Applications) of a scenario that failed, in its "
        "deploy or its steps, instead of deleting it; the report names it",
    )


def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    config.stash[_SCENARIOS] = []


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = session.config.getoption("bgh_report")
    scenarios = session.config.stash.get(_SCENARIOS, [])
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(render(scenarios), encoding="utf-8")


@dataclass(frozen=True)
class DemoSystem:
    """The demo system a scenario works on: where it runs and the façades over it."""

    target: Target
    kube: Kube
    rollouts: Rollouts
    gateway: Gateway
    releases: Releases

    @property
    def settings(self) -> Settings:
        return self.target.settings

    @property
    def namespace(self) -> str:
        return self.settings.namespace


@pytest.fixture(scope="session")
def bgh_settings(pytestconfig: pytest.Config) -> Settings:
    """Settings from BGH_* variables, then the command-line options."""
    overrides: dict[str, Any] = {}
    if pytestconfig.getoption("bgh_target"):
        overrides["target"] = pytestconfig.getoption("bgh_target")
    if pytestconfig.getoption("bgh_namespace"):
        overrides["namespace"] = pytestconfig.getoption("bgh_namespace")
    if pytestconfig.getoption("bgh_settle"):
        overrides["settle"] = True
    if pytestconfig.getoption("bgh_rollouts_version"):
        overrides["rollouts_version"] = pytestconfig.getoption("bgh_rollouts_version")
    try:
        settings = load_settings(**overrides)
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from exc
    target = target_for(settings, report=_progress(pytestconfig))
    if target.name == "local":
        target.up()  # kind is brought up by its workflow; existing is someone else's
    return settings


def _progress(config: pytest.Config) -> Any:
    reporter = config.pluginmanager.get_plugin("terminalreporter")

    def report(line: str) -> None:
        if reporter is not None:
            reporter.write_line(f"bgh: {line}")

    return report


@pytest.fixture
def demo(
    bgh_settings: Settings, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[DemoSystem]:
    """The demo system: deployed fresh in a namespace of its own, or the existing one."""
    readonly = request.node.get_closest_marker("readonly") is not None
    target = target_for(bgh_settings, report=_progress(request.config))
    if not target.owns_cluster:
        if not readonly:
            if request.node.get_closest_marker("gitops") is not None:
                pytest.skip(
                    "@gitops needs the demo system delivered from a Git repository of the "
                    f"scenario's own, which the local target makes; the {target.name} target "
                    "has none"
                )
            _refuse_unlabelled(target.kube())
            yield from _guarded(request, target, tmp_path)
            return
        request.node.stash[_SYSTEM] = system = _system(target)
        yield system
        return
    if isinstance(target, KindTarget):
        _skip_without_addons(target, request)
    namespace = f"rb-{uuid.uuid4().hex[:8]}"
    if request.node.get_closest_marker("gitops") is not None:
        yield from _delivered_by_argocd(target, request, tmp_path, namespace)
        return
    shutil.copytree(Path(bgh_settings.gitops_dir), tmp_path / "gitops")
    settings = bgh_settings.model_copy(
        update={"namespace": namespace, "gitops_dir": tmp_path / "gitops"}
    )
    request.node.stash[_SYSTEM] = system = _system(target_for(settings))
    # A finalizer, not code after the yield: it runs when the deploy below fails too, after the
    # failure's artifacts were collected.
    request.addfinalizer(lambda: _clean_up(request, system))
    system.releases.deploy()
    # "The demo system is running" means serving, not only Healthy Rollouts.
    system.gateway.wait_for_answers()
    yield system


def _clean_up(
    request: pytest.FixtureRequest, system: DemoSystem, *, delivery: ArgoCDDelivery | None = None
) -> None:
    """Delete the namespace a scenario made (and its Argo CD Applications), unless it failed
    and ``--bgh-keep-failed`` asks to keep it; the report says which."""
    namespace = system.namespace
    item = request.node
    if item.stash.get(_FAILED, False) and request.config.getoption("bgh_keep_failed"):
        kept = f"namespace {namespace} kept (--bgh-keep-failed)"
        if delivery is not None:
            kept += f" with its Argo CD Application {delivery.root} (namespace argocd)"
        _progress(request.config)(f"{kept}; delete it with: kubectl delete namespace {namespace}")
        item.user_properties.append(("bgh_namespace_kept", namespace))
        return
    try:
        if delivery is not None:
            delivery.teardown()
    finally:
        # A deploy that failed before making the namespace leaves nothing to delete.
        system.target.kubectl().run(
            "delete", "namespace", namespace, "--wait=false", "--ignore-not-found"
        )


def _refuse_unlabelled(kube: Kube) -> None:
    """Skip a scenario that changes the cluster unless its namespace says it may."""
    try:
        labels = kube.namespace_labels()
    except Forbidden as exc:
        pytest.skip(
            "changes the cluster, and this identity cannot read namespace "
            f'"{kube.namespace}" to check its {TESTING_LABEL} label, so it is '
            f"treated as unlabelled ({exc})"
        )
    if labels.get(TESTING_LABEL) != "true":
        pytest.skip(
            f'changes the cluster: namespace "{kube.namespace}" is not labelled '
            f"{TESTING_LABEL}=true (kubectl label namespace {kube.namespace} "
            f"{TESTING_LABEL}=true to allow it)"
        )


@pytest.fixture(scope="session")
def bgh_guard(bgh_settings: Settings, pytestconfig: pytest.Config) -> Iterator[NamespaceGuard]:
    """This run's custody of the existing namespace: its Lease, taken by the first scenario that
    changes the namespace and released when the run ends."""
    kube = target_for(bgh_settings).kube()
    guard = NamespaceGuard(
        kube,
        Rollouts(kube, timeout=bgh_settings.deadlines.rollout),
        identity=default_identity(),
        settle=bgh_settings.settle,
        lock_wait=bgh_settings.lock_wait,
        report=_progress(pytestconfig),
    )
    yield guard
    guard.close()


def _guarded(
    request: pytest.FixtureRequest, target: Target, tmp_path: Path
) -> Iterator[DemoSystem]:
    """A scenario that changes a namespace someone else runs: refused at once unless it is
    settled, restored and verified afterwards whatever the outcome (a failed restore is an
    error of the scenario's teardown, with the state left behind). Its releases write a
    scratch copy of gitops/."""
    guard: NamespaceGuard = request.getfixturevalue("bgh_guard")
    recorded = guard.begin()
    shutil.copytree(Path(target.settings.gitops_dir), tmp_path / "gitops")
    scratch = target.settings.model_copy(update={"gitops_dir": tmp_path / "gitops"})
    system = _system(target_for(scratch), first_revision=recorded.first_revisions)
    # Only this scenario's events count: the namespace keeps earlier releases' events.
    system.rollouts.events_after = system.rollouts.events_mark()
    request.node.stash[_SYSTEM] = system
    try:
        yield system
    finally:
        restored = guard.end(recorded)
        request.node.user_properties.append(("bgh_restore_seconds", f"{restored.seconds:.2f}"))


def _delivered_by_argocd(
    target: Target, request: pytest.FixtureRequest, tmp_path: Path, namespace: str
) -> Iterator[DemoSystem]:
    """The demo system as Argo CD delivers it, from a Git repository of the scenario's own:
    seeded from gitops/ with the Applications named after the namespace and deploying into it,
    so scenarios never share an Application."""
    argocd = target.gitops_argocd()
    if argocd is None:
        pytest.skip(
            "@gitops runs on the local target, whose Argo CD reads a Git repository on this "
            f"machine; on {target.name} Argo CD cannot reach a file:// repository"
        )
    repository = GitRepository(tmp_path / "repository")
    repository.seed(
        Path(target.settings.gitops_dir).resolve(),
        suffix=namespace,
        namespace=namespace,
        parameters=target.chart_values(),
    )
    settings = target.settings.model_copy(
        update={"namespace": namespace, "gitops_dir": repository.gitops_dir}
    )
    delivery = ArgoCDDelivery(argocd, repository, report=_progress(request.config))
    request.node.stash[_SYSTEM] = system = _system(target_for(settings), delivery=delivery)
    request.addfinalizer(lambda: _clean_up(request, system, delivery=delivery))
    system.releases.deploy()
    yield system


def _skip_without_addons(target: KindTarget, request: pytest.FixtureRequest) -> None:
    """On kind, a scenario needing the mesh or Prometheus is skipped when the cluster lacks it,
    with the reason read from the cluster (the local target emulates both, so runs them)."""
    needs = {
        "mesh": ("istio", "needs mesh routing (Istio's sidecars send gateway A's preview pods "
                 "to the previews of B and C)"),
        "analysis": ("prometheus", "needs Prometheus to judge the preview"),
    }  # fmt: skip
    for marker, (addon, why) in needs.items():
        if request.node.get_closest_marker(marker) is None:
            continue
        missing = target.missing_addon(addon)
        if missing:
            pytest.skip(f"@{marker}: {why}; {missing}")


def _system(
    target: Target,
    *,
    delivery: ArgoCDDelivery | None = None,
    first_revision: dict[str, int] | None = None,
) -> DemoSystem:
    kube = target.kube()
    return DemoSystem(
        target=target,
        kube=kube,
        rollouts=Rollouts(
            kube, timeout=target.settings.deadlines.rollout, first_revision=first_revision
        ),
        gateway=target.gateway(),
        releases=Releases(target, delivery=delivery),
    )


@pytest.fixture
def rollouts(demo: DemoSystem) -> Rollouts:
    return demo.rollouts


@pytest.fixture
def gateway(demo: DemoSystem) -> Gateway:
    return demo.gateway


@pytest.fixture
def releases(demo: DemoSystem) -> Releases:
    return demo.releases


# -- progress and artifacts --------------------------------------------------------------------


def watch(item: pytest.Item, gateway: Gateway) -> None:
    """Show what ``gateway``'s probes see in the runbook report, under each step of ``item``."""
    item.stash[_GATEWAY] = gateway


def _gateway(item: pytest.Item) -> Gateway | None:
    system = item.stash.get(_SYSTEM, None)
    return item.stash.get(_GATEWAY, system.gateway if system is not None else None)


def pytest_bdd_before_step(request: pytest.FixtureRequest, step: Any) -> None:
    request.node.stash[_STEP_STARTED] = time.monotonic()
    gateway = _gateway(request.node)
    request.node.stash[_STEP_MARK] = gateway.mark if gateway is not None else 0


def _step_done(request: pytest.FixtureRequest, step: Any, result: str) -> float:
    """Record a step that ran; returns its duration."""
    seconds: float = time.monotonic() - request.node.stash.get(_STEP_STARTED, time.monotonic())
    gateway = _gateway(request.node)
    probes = gateway.seen_since(request.node.stash.get(_STEP_MARK, 0)) if gateway else []
    record = StepRecord(step.keyword, step.name, seconds, result, probes)
    request.node.stash.setdefault(_STEPS, []).append(record)
    return seconds


def pytest_bdd_after_step(request: pytest.FixtureRequest, step: Any) -> None:
    seconds = _step_done(request, step, "passed")
    _progress(request.config)(f"  {step.keyword} {step.name}  ({seconds:.1f}s)")


def pytest_bdd_step_error(request: pytest.FixtureRequest, step: Any) -> None:
    seconds = _step_done(request, step, "failed")
    _progress(request.config)(f"  {step.keyword} {step.name}  FAILED after {seconds:.1f}s")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed scenario, in its steps or in deploying its demo system, leaves its artifacts
    (collected here, before any teardown) and is remembered for ``--bgh-keep-failed``."""
    report = yield
    if report.when in ("setup", "call") and report.failed:
        item.stash[_FAILED] = True
        _collect(item, report)
    # pytest-bdd's scenario functions take its example-row fixture; other tests do not.
    is_scenario = "_pytest_bdd_example" in getattr(item, "fixturenames", ())
    if is_scenario and (report.when == "call" or (report.when == "setup" and not report.passed)):
        _finished(item, report, call)
    return report


def _finished(item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo[None]) -> None:
    """Print the scenario's name and result, and keep it for the runbook report."""
    feature, name = item.stash.get(_SCENARIO, (_feature_of(item), item.name))
    if report.skipped:
        # An @upstream runbook failing as its issue predicts (steps/upstream.py).
        result = "xfailed" if hasattr(report, "wasxfail") else "skipped"
    elif report.failed:
        result = "failed" if report.when == "call" else "error"
    else:
        result = "passed"
    steps = [*item.stash.get(_STEPS, [])]
    planned = item.stash.get(_PLANNED, [])
    steps += [StepRecord(k, n, 0.0, "not run") for k, n in planned[len(steps) :]]
    message = ""
    if call.excinfo is not None:
        message = call.excinfo.exconly()[:4000]
    scenario = ScenarioRecord(
        feature=feature,
        name=name,
        result=result,
        seconds=report.duration,
        steps=steps,
        message=message,
        artifacts=item.stash.get(_ARTIFACTS, None),
        artifact_files=item.stash.get(_ARTIFACT_FILES, []),
    )
    item.config.stash.setdefault(_SCENARIOS, []).append(scenario)
    _progress(item.config)(scenario.line)


def _collect(item: pytest.Item, report: pytest.TestReport) -> None:
    system = item.stash.get(_SYSTEM, None)
    if system is None:
        return
    base = Path(item.config.getoption("bgh_artifacts"))
    directory = base / _feature_of(item) / _slug(item.name.removeprefix("test_"))
    collected = collect_artifacts(
        system.kube, directory, answers=list(system.gateway.last), pod_logs=system.target.pod_logs
    )
    item.stash[_ARTIFACTS] = directory
    item.stash[_ARTIFACT_FILES] = list(collected.files)
    lines = [f"artifacts: {directory}/", *collected.summary]
    lines += [f"could not collect {e}" for e in collected.errors]
    if system.target.owns_cluster:
        keep = item.config.getoption("bgh_keep_failed")
        lines.append(
            f"namespace {system.namespace}: "
            + (
                "kept (--bgh-keep-failed)"
                if keep
                else "deleted at teardown (--bgh-keep-failed keeps it)"
            )
        )
    report.sections.append(("bgh artifacts", "\n".join(lines)))
    if item.config.pluginmanager.has_plugin("html"):
        from pytest_html import extras

        # The HTML report links each file collected (paths relative to the report's folder
        # would break when it is moved; absolute file URLs open from the machine that ran it).
        links = [extras.url(path.resolve().as_uri(), name=path.name) for path in collected.files]
        report.extras = [*getattr(report, "extras", []), *links]  # type: ignore[attr-defined]


def _feature_of(item: pytest.Item) -> str:
    """The feature file's stem (e.g. ``undo``), recorded by ``pytest_bdd_before_scenario``."""
    return item.stash.get(_FEATURE, "") or _slug(Path(str(item.path)).stem)


def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    request.node.stash[_FEATURE] = _slug(Path(feature.filename).stem)
    request.node.stash[_SCENARIO] = (feature.name or Path(feature.filename).stem, scenario.name)
    request.node.stash[_PLANNED] = [(step.keyword, step.name) for step in scenario.steps]
    handler = _WaitProgress(_progress(request.config))
    wait_log = logging.getLogger("bgh.wait")
    # Python's default level (WARNING) would drop the progress lines before any handler.
    wait_log.setLevel(logging.INFO)
    wait_log.addHandler(handler)
    request.node.stash[_WAIT_HANDLER] = handler


def pytest_bdd_after_scenario(request: pytest.FixtureRequest) -> None:
    handler = request.node.stash.get(_WAIT_HANDLER, None)
    if handler is not None:
        logging.getLogger("bgh.wait").removeHandler(handler)


class _WaitProgress(logging.Handler):
    """Long waits' progress on the terminal while a scenario runs: the wait's start, each change
    it observes and how it ends, under the step that is waiting."""

    def __init__(self, write: Any) -> None:
        super().__init__(level=logging.INFO)
        self.write = write

    def emit(self, record: logging.LogRecord) -> None:
        self.write(f"      {record.getMessage()}")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80] or "scenario"
