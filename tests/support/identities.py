"""Runbooks run as one of the harness's identities (gitops/rbac/harness-roles.yaml).

Each run is a pytest process of its own over a copy of one feature file, with the runbook plugin on
the ``existing`` target: the namespace is given, deployed beforehand by the cluster's owner, and
every request the runbook sends (the Kubernetes client's and kubectl's) impersonates the identity
(``BGH_IMPERSONATE``), so the local target's API server authorizes it by RBAC and admission as it
would a token of that ServiceAccount. The outcome is read from the run's JUnit report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness import builds
from harness.delivery import DirectApply
from harness.kubectl import Kubectl
from harness.settings import load_settings
from harness.targets import target_for
from harness.targets.local import LocalTarget

CHECKOUT = Path(__file__).resolve().parents[2]
RBAC = CHECKOUT / "gitops" / "rbac"
ROLES = RBAC / "harness-roles.yaml"
POLICY = RBAC / "rollout-edits-policy.yaml"
FEATURES = CHECKOUT / "features"
RUNBOOKS = "bgh-runbooks"
NIGHTLY = "bgh-nightly"
BINDING = 'from pytest_bdd import scenarios\n\nscenarios("features")\n'


def user(namespace: str, identity: str) -> str:
    """The user name a ServiceAccount's requests carry, which impersonation asks for."""
    return f"system:serviceaccount:{namespace}:{identity}"


def is_readonly(feature: Path) -> bool:
    """Whether a feature file is tagged @readonly (before its Feature line)."""
    header = feature.read_text().split("Feature:", 1)[0]
    return "@readonly" in header.split()


@dataclass(frozen=True)
class Outcome:
    """One scenario run as one identity: passed, skipped, failed or error, and why."""

    feature: str
    scenario: str
    identity: str
    result: str
    reason: str
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return {
            "feature": self.feature,
            "scenario": self.scenario,
            "identity": self.identity,
            "result": self.result,
            "reason": self.reason,
            "seconds": round(self.seconds, 1),
        }


def deploy_demo(target: LocalTarget, namespace: str, workdir: Path) -> Path:
    """Deploy the demo system (QA) into ``namespace`` as the cluster's owner, label it for
    mutating runbooks and bind both identities there; the gitops tree copy it came from."""
    tree = workdir / "gitops"
    shutil.copytree(CHECKOUT / "gitops", tree)
    settings = load_settings(
        target="local", namespace=namespace, gitops_dir=tree, state_dir=target.root.parent
    )
    # The runbooks then run on the existing-target path, which renders the version file as it
    # stands: it must name the analysis server and Prometheus this target serves.
    target.name_analysis_urls(tree, "qa")
    DirectApply(target_for(settings)).deploy("qa")
    bind_identities(target, namespace)
    owner_kubectl(target).run("label", "namespace", namespace, "bgh.dev/testing=true")
    return tree


def bind_identities(target: LocalTarget, namespace: str) -> None:
    owner_kubectl(target).run("apply", "-n", namespace, "-f", str(ROLES))


def owner_kubectl(target: LocalTarget, *, impersonate: str | None = None) -> Kubectl:
    """The local target's kubectl with its owner's kubeconfig, acting as ``impersonate``."""
    binary = builds.KUBERNETES.install_dir(target.settings.cache_dir) / "kubectl"
    return Kubectl(binary, target.kubeconfig, None, impersonate=impersonate)


def token_kubeconfig(target: LocalTarget, token: str, path: Path) -> Path:
    """A kubeconfig for the local target that authenticates with ``token`` alone."""
    admin = yaml.safe_load(target.kubeconfig.read_text())
    cluster = admin["clusters"][0]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "bearer", "user": {"token": token}}],
                "contexts": [
                    {"name": "bearer", "context": {"cluster": cluster["name"], "user": "bearer"}}
                ],
                "current-context": "bearer",
            }
        )
    )
    return path


def scenarios_of(feature: Path, workdir: Path) -> list[str]:
    """The pytest node ids of a feature's scenarios, as the runbook plugin collects them."""
    _layout(feature, workdir)
    collected = _pytest(workdir, ["--collect-only", "-q"], os.environ.copy(), timeout=120)
    return [line for line in collected.stdout.splitlines() if "::" in line]


def run_runbook(
    target: LocalTarget,
    *,
    feature: Path,
    namespace: str,
    identity: str | None,
    workdir: Path,
    gitops_dir: Path | None = None,
    kubeconfig: Path | None = None,
    select: str | None = None,
) -> list[Outcome]:
    """Run ``feature`` (or the one scenario ``select``) on the existing target in ``namespace``,
    impersonating ServiceAccount ``identity`` (None: ``kubeconfig``'s own user). ``gitops_dir``:
    the tree ``deploy_demo`` deployed from, releases write there; None: nothing is deployed."""
    _layout(feature, workdir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BGH_")}
    kubectl_dir = builds.KUBERNETES.install_dir(target.settings.cache_dir)
    env |= {
        "PATH": f"{kubectl_dir}{os.pathsep}{env.get('PATH', '')}",
        "BGH_TARGET": "existing",
        "BGH_KUBECONFIG": str(kubeconfig or target.kubeconfig),
        "BGH_NAMESPACE": namespace,
        "BGH_GITOPS_DIR": str(gitops_dir or CHECKOUT / "gitops"),
        "BGH_CACHE_DIR": str(target.settings.cache_dir),
    }
    if identity is not None:
        env["BGH_IMPERSONATE"] = user(namespace, identity)
    if gitops_dir is not None:  # deployed: gateway A is served
        env["BGH_GATEWAY_URL"] = target.service_url(namespace, "gateway-a", 3000)
        env["BGH_GATEWAY_PREVIEW_URL"] = target.service_url(namespace, "gateway-a-preview", 3000)
    report = workdir / "report.xml"
    started = time.monotonic()
    ran = _pytest(workdir, [f"--junitxml={report}", "-rA", select or "."], env, timeout=900)
    seconds = time.monotonic() - started
    if not report.is_file():
        raise AssertionError(f"the runbook run wrote no report:\n{ran.stdout[-3000:]}")
    outcomes = []
    for case in ET.parse(report).getroot().iter("testcase"):
        result, reason = "passed", ""
        for kind in ("skipped", "failure", "error"):
            found = case.find(kind)
            if found is not None:
                result = {"failure": "failed"}.get(kind, kind)
                reason = (found.get("message") or "") + "\n" + (found.text or "")[-2000:]
        outcomes.append(
            Outcome(
                feature=feature.stem,
                scenario=case.get("name", ""),
                identity=identity or "kubeconfig user",
                result=result,
                reason=reason.strip(),
                seconds=float(case.get("time") or seconds),
            )
        )
    return outcomes


def _layout(feature: Path, workdir: Path) -> None:
    (workdir / "features").mkdir(parents=True, exist_ok=True)
    shutil.copy(feature, workdir / "features" / feature.name)
    (workdir / "test_runbooks.py").write_text(BINDING)


def _pytest(
    workdir: Path, argv: list[str], env: dict[str, str], *, timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-W", "ignore", *argv],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
