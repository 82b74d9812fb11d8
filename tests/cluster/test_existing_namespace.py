"""The local target used as a long-lived cluster (``--bgh-target existing``): the demo system
deployed once into a namespace labelled ``bgh.dev/testing=true``, runbooks run against it.

A scenario that fails half-way leaves the namespace as it found it; a pending release fails the
precondition within seconds, naming the Rollouts; two runs never hold the namespace at once.
"""

from __future__ import annotations

import datetime
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import builds
from harness.delivery import DirectApply
from harness.kube import LEASE, Kube, Resource
from harness.lease import NAME, RECORD_ANNOTATION, LockHeld, NamespaceLock, holder_from
from harness.release import Releases
from harness.restore import Snapshot, read_snapshot, restore, verify
from harness.rollouts import Phase, Rollouts
from harness.settings import Settings, load_settings
from harness.targets import target_for
from harness.targets.local import LocalTarget
from harness.waits import wait_for
from tests.cluster.conftest import Cluster

CHECKOUT = Path(__file__).resolve().parents[2]
BINDING = """
from pytest_bdd import scenarios

scenarios("features")
"""

pytestmark = pytest.mark.cluster


@dataclass(frozen=True)
class LongLived:
    """The demo system in a namespace of its own, as a long-lived cluster would have it."""

    namespace: str
    settings: Settings  # the local target's view, used to deploy and release from outside
    kube: Kube
    rollouts: Rollouts
    gitops_dir: Path

    def snapshot(self) -> Snapshot:
        return read_snapshot(self.rollouts)


@pytest.fixture(scope="module")
def long_lived(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LongLived]:
    if not isinstance(cluster.target, LocalTarget):
        pytest.skip("the existing-target tests use the local target as the long-lived cluster")
    namespace = f"ex-{uuid.uuid4().hex[:8]}"
    tree = tmp_path_factory.mktemp("tree") / "gitops"
    shutil.copytree(CHECKOUT / "gitops", tree)
    settings = load_settings(
        namespace=namespace,
        gitops_dir=tree,
        state_dir=CHECKOUT / load_settings().state_dir,
    )
    deployed = DirectApply(target_for(settings)).deploy("qa")
    assert [d.phase for d in deployed] == ["Healthy"] * 3
    cluster.kubectl("label", "namespace", namespace, "bgh.dev/testing=true")
    kube = Kube(kubeconfig=cluster.target.kubeconfig, context=None, namespace=namespace)
    yield LongLived(
        namespace, settings, kube, Rollouts(kube, timeout=settings.deadlines.rollout), tree
    )
    cluster.kubectl("delete", "namespace", namespace, "--wait=false")


def run_existing(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    long_lived: LongLived,
    feature: str,
    *args: str,
) -> pytest.RunResult:
    """Run ``feature`` with ``--bgh-target existing`` against the long-lived namespace."""
    target = LocalTarget(long_lived.settings)
    monkeypatch.setenv("BGH_KUBECONFIG", str(target.kubeconfig))
    monkeypatch.setenv("BGH_GITOPS_DIR", str(long_lived.gitops_dir))
    monkeypatch.setenv("BGH_STATE_DIR", str(long_lived.settings.state_dir))
    # pytester points HOME at its own directory: a run in a process of its own would otherwise
    # look for the built binaries (helm) under it and build them again, from the network.
    monkeypatch.setenv("BGH_CACHE_DIR", str(long_lived.settings.cache_dir))
    # The data plane serves each Service on a loopback address of its own; a real cluster's
    # would be found from its Services (harness/discovery.py) or given like this.
    for variable, service in (("URL", "gateway-a"), ("PREVIEW_URL", "gateway-a-preview")):
        url = target.service_url(long_lived.namespace, service, 3000)
        monkeypatch.setenv(f"BGH_GATEWAY_{variable}", url)
    kubectl = builds.KUBERNETES.install_dir(long_lived.settings.cache_dir)
    monkeypatch.setenv("PATH", f"{kubectl}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    pytester.makepyfile(test_runbooks=BINDING)
    (pytester.path / "features").mkdir(exist_ok=True)
    (pytester.path / "features" / "scenario.feature").write_text(feature)
    return pytester.runpytest_inprocess(
        "-p",
        "no:cacheprovider",
        "-W",
        "ignore",
        "--bgh-target",
        "existing",
        "--bgh-namespace",
        long_lived.namespace,
        *args,
    )


HALF_WAY = """\
Feature: Half-way
  Scenario: A release that fails after it reached preview
    Given the demo system is running
    When I release version "1.1.0" of "service-b"
    Then every rollout of the release becomes Paused
    And the rollout "service-b" has revision 1 on active and 3 on preview
"""


def test_a_scenario_that_fails_half_way_leaves_the_namespace_as_it_found_it(
    long_lived: LongLived, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = long_lived.snapshot()
    result = run_existing(pytester, monkeypatch, long_lived, HALF_WAY)
    result.assert_outcomes(failed=1)  # the wrong revision; the restore itself raised nothing
    result.stdout.fnmatch_lines(["*restored in *s: *service-b: abort, undo --to-revision=*"])
    assert verify(long_lived.rollouts, before) == []
    after = long_lived.snapshot()
    assert [(r.name, r.current_hash, r.active_hash, r.preview_hash) for r in after.rollouts] == [
        (r.name, r.current_hash, r.active_hash, r.preview_hash) for r in before.rollouts
    ]
    lease = long_lived.kube.get(LEASE, NAME)
    assert lease["spec"].get("holderIdentity") in (None, "")  # released at the end of the run
    assert RECORD_ANNOTATION not in (lease["metadata"].get("annotations") or {})


PROMOTE_TWICE = """\
Feature: Twice
  Scenario: A release is promoted, counted from where the namespace was
    Given the demo system is running
    When I release version "1.1.0" of "service-c"
    Then the rollout "service-c" becomes Paused
    And the rollout "service-c" has revision 1 on active and 2 on preview
    When I promote "service-c" fully
    Then the rollout "service-c" becomes Healthy
    And the rollout "service-c" has revision 2 on active and 2 on preview
    And the events of "service-c" end with "SwitchService" then "RolloutCompleted"
"""


def test_a_promoted_release_is_undone_and_the_same_scenario_passes_again(
    long_lived: LongLived, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = long_lived.snapshot()
    for _ in range(2):
        result = run_existing(pytester, monkeypatch, long_lived, PROMOTE_TWICE, "-rs")
        # Only this scenario's events are read: the namespace's earlier SwitchService and
        # RolloutCompleted (the deploy, the first run, its undo) must not decide the order.
        # Once the controller's recorder drops service-c's events (client-go keeps 25 per
        # object), the order cannot be checked: a skip naming why, never a pass.
        outcomes = result.parseoutcomes()
        if outcomes.get("skipped"):
            result.stdout.fnmatch_lines(["*drops an object's events after 25*"])
        else:
            result.assert_outcomes(passed=1)
        assert verify(long_lived.rollouts, before) == []
    assert (
        long_lived.snapshot().by_name()["service-c"].revision
        > before.by_name()["service-c"].revision
    )  # undo moves the recorded ReplicaSet up: same hash, a later revision


MUTATING = """\
Feature: Pending
  Scenario: Anything that changes the namespace
    Given the demo system is running
    When I promote "service-b"
"""


def test_a_pending_release_fails_the_precondition_within_five_seconds_naming_it(
    long_lived: LongLived, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = long_lived.snapshot()
    # Someone else's release, waiting on preview (a scratch copy of the tree: not the run's).
    scratch = long_lived.settings.model_copy(
        update={"gitops_dir": pytester.path / "someone-else" / "gitops"}
    )
    shutil.copytree(long_lived.gitops_dir, scratch.gitops_dir)
    release = Releases(target_for(scratch)).release("service-b", "1.1.0")
    try:
        for args in ((), ("--bgh-settle",)):
            started = time.monotonic()
            result = run_existing(pytester, monkeypatch, long_lived, MUTATING, *args)
            seconds = time.monotonic() - started
            result.assert_outcomes(failed=1)  # pytest-bdd asks for `demo` when the steps run
            assert seconds < 5, f"the precondition took {seconds:.1f}s"
            names = ", ".join(sorted(release.rollouts))
            result.stdout.fnmatch_lines(
                [
                    f'*NotSettled: namespace "{long_lived.namespace}" is not settled ({names})*',
                    "*settle it: kubectl argo rollouts promote service-b*",
                ]
            )
        result.stdout.fnmatch_lines(["*none of it was left by a run of the harness*"])
        assert long_lived.snapshot().by_name()["service-b"].phase == Phase.PAUSED.value
    finally:
        restore(long_lived.rollouts, before)  # as a person would: abort, undo
    assert verify(long_lived.rollouts, before) == []


def test_two_runs_never_hold_the_namespace_at_once(long_lived: LongLived) -> None:
    first = NamespaceLock(long_lived.kube, identity="first@test pid 1")
    second = NamespaceLock(long_lived.kube, identity="second@test pid 2")
    assert first.acquire(wait=0) is None
    started = time.monotonic()
    with pytest.raises(LockHeld, match=r'held by "first@test pid 1" \(acquired') as refused:
        second.acquire(wait=0)
    assert time.monotonic() - started < 2
    assert refused.value.holder is not None
    assert refused.value.holder.identity == "first@test pid 1"

    acquired: list[float] = []
    waiting_on_watch = threading.Event()

    class Started(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "released by first@test" in record.getMessage():
                waiting_on_watch.set()

    handler = Started()
    logging.getLogger("bgh.wait").addHandler(handler)
    logging.getLogger("bgh.wait").setLevel(logging.INFO)

    def wait_for_it() -> None:
        second.acquire(wait=30)
        acquired.append(time.monotonic())

    waiting = threading.Thread(target=wait_for_it)
    waiting.start()
    try:
        assert waiting_on_watch.wait(timeout=10), "the second run never started waiting"
    finally:
        logging.getLogger("bgh.wait").removeHandler(handler)
    assert acquired == []
    released = time.monotonic()
    first.release()
    waiting.join(timeout=30)
    assert acquired, "the waiting run never got the Lease"
    assert released <= acquired[0] < released + 3  # woken by the release, not by polling
    assert long_lived.kube.get(LEASE, NAME)["spec"]["holderIdentity"] == "second@test pid 2"
    second.release()


def test_a_lease_left_by_a_run_that_died_is_taken_over_with_its_record(
    long_lived: LongLived,
) -> None:
    lease = long_lived.kube.get(LEASE, NAME)
    lapsed = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    lease["spec"] |= {
        "holderIdentity": "died@test pid 3",
        "leaseDurationSeconds": 60,
        "renewTime": lapsed.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    record = long_lived.snapshot().to_json()
    lease["metadata"].setdefault("annotations", {})[RECORD_ANNOTATION] = record
    long_lived.kube.replace(LEASE, NAME, lease)
    taker = NamespaceLock(long_lived.kube, identity="next@test pid 4")
    left = taker.acquire(wait=0)
    try:
        assert left is not None and left.identity == "died@test pid 3"
        assert left.recorded == record
    finally:
        taker.record(None)
        taker.release()


SLOW_RELEASE = """\
Feature: Holder
  Scenario: A release that holds the namespace for a while
    Given the demo system is running
    When I release version "1.1.0" of "service-b"
    Then every rollout of the release becomes Paused
"""


def test_a_second_run_refuses_while_the_first_changes_the_namespace(
    long_lived: LongLived, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = long_lived.snapshot()
    # Set up the environment and files the in-process run uses; the first run is a process of
    # its own started on the same files.
    run_existing(pytester, monkeypatch, long_lived, SLOW_RELEASE, "--collect-only")
    first = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--bgh-target",
         "existing", "--bgh-namespace", long_lived.namespace],
        cwd=pytester.path, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        wait_for(
            Resource(long_lived.kube, LEASE, holder_from),
            NAME,
            lambda h: h.identity.endswith(f"pid {first.pid}"),
            what="the first run's Lease",
            describe=lambda h: h.identity or "-",
            within=60,
        )
        second = run_existing(pytester, monkeypatch, long_lived, MUTATING)
        second.assert_outcomes(failed=1)
        second.stdout.fnmatch_lines(
            [f'*LockHeld: namespace "{long_lived.namespace}" is being changed by another run: '
             f'Lease {long_lived.namespace}/bgh-runbooks is held by "*pid {first.pid}"*']
        )  # fmt: skip
        output, _ = first.communicate(timeout=300)
        assert first.returncode == 0, output
    finally:
        if first.poll() is None:
            first.kill()
    assert verify(long_lived.rollouts, before) == []
