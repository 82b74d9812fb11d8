"""Building the local target's control-plane binaries from the Go module proxy, and caching them.

Each component is a small wrapper module under ``gomod/<name>/`` whose ``go.mod`` pins one
upstream release (copying upstream's ``replace`` directives, as k8s.io/kubernetes, etcd and
argo-rollouts need) and whose ``go.sum`` pins every checksum. Binaries land in
``<cache_dir>/bin/<name>-<version>-<key>/`` where the key hashes the wrapper files, so a version
change rebuilds and a second ``bgh up`` is instant. Nothing is written inside the work tree.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness import versions
from harness.errors import ConfigError, TargetError, log_tail

GOMOD_DIR = Path(__file__).parent / "gomod"

Report = Callable[[str], None]


@dataclass(frozen=True)
class Component:
    """One wrapper module and the binaries built from it."""

    name: str
    module: str
    version: str
    binaries: Mapping[str, str] = field(default_factory=dict)
    # Data files copied from the upstream module beside the binaries: {dest dir: module glob(s)}.
    # Shell scripts among them are made executable.
    assets: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    # The wrapper module under gomod/ when it is not the component's own name (two components
    # can take different parts of one pinned module).
    wrapper_name: str | None = None
    # Extra -X flags, as upstream's Makefile sets them (a version the binary reports).
    ldflags: tuple[str, ...] = ()

    @property
    def wrapper(self) -> Path:
        return GOMOD_DIR / (self.wrapper_name or self.name)

    def key(self) -> str:
        digest = hashlib.sha256()
        for part in ("go.mod", "go.sum", "tools.go"):
            digest.update((self.wrapper / part).read_bytes())
        digest.update(json.dumps(sorted(self.assets.items())).encode())
        if self.ldflags:
            digest.update(json.dumps(self.ldflags).encode())
        return digest.hexdigest()[:12]

    def install_dir(self, cache_dir: Path) -> Path:
        return cache_dir / "bin" / f"{self.name}-{self.version}-{self.key()}"


KUBERNETES = Component(
    "kubernetes",
    "k8s.io/kubernetes",
    versions.KUBERNETES,
    {
        "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
        "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
        "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
        "kubectl": "k8s.io/kubernetes/cmd/kubectl",
    },
)
ETCD = Component(
    "etcd", "go.etcd.io/etcd/server/v3", versions.ETCD, {"etcd": "go.etcd.io/etcd/server/v3"}
)
KWOK = Component(
    "kwok",
    "sigs.k8s.io/kwok",
    versions.KWOK,
    {"kwok": "sigs.k8s.io/kwok/cmd/kwok", "kwokctl": "sigs.k8s.io/kwok/cmd/kwokctl"},
)
ARGO_ROLLOUTS = Component(
    "argo-rollouts",
    "github.com/argoproj/argo-rollouts",
    versions.ARGO_ROLLOUTS,
    {
        "rollouts-controller": "github.com/argoproj/argo-rollouts/cmd/rollouts-controller",
        "kubectl-argo-rollouts": "github.com/argoproj/argo-rollouts/cmd/kubectl-argo-rollouts",
    },
    # The CRDs come from the same module version as the controller, never from elsewhere.
    {"crds": "manifests/crds/*-crd.yaml"},
)

ARGO_ROLLOUTS_RELEASES = {
    ARGO_ROLLOUTS.version: ARGO_ROLLOUTS,
    **{
        version: Component(
            ARGO_ROLLOUTS.name,
            ARGO_ROLLOUTS.module,
            version,
            ARGO_ROLLOUTS.binaries,
            ARGO_ROLLOUTS.assets,
            wrapper_name=f"argo-rollouts-{version}",
        )
        for version in versions.ARGO_ROLLOUTS_OTHERS
    },
}


def argo_rollouts(version: str) -> Component:
    """The Argo Rollouts build of ``version``: the pinned one or one of the others."""
    if version not in ARGO_ROLLOUTS_RELEASES:
        raise ConfigError(
            f"no pinned build of Argo Rollouts {version}; expected one of "
            f"{', '.join(ARGO_ROLLOUTS_RELEASES)}"
        )
    return ARGO_ROLLOUTS_RELEASES[version]


# CRD-only components: no binaries, only data files from the pinned upstream module.
ISTIO = Component(
    "istio",
    "istio.io/api",
    versions.ISTIO_API,
    assets={"crds": "kubernetes/customresourcedefinitions.gen.yaml"},
)
ARGO_CD_CRDS = Component(
    "argo-cd-crds",
    "github.com/argoproj/argo-cd/v3",
    versions.ARGO_CD,
    assets={"crds": ("manifests/crds/application-crd.yaml", "manifests/crds/appproject-crd.yaml")},
    wrapper_name="argo-cd",
)

COMPONENTS: tuple[Component, ...] = (ETCD, KUBERNETES, KWOK, ARGO_ROLLOUTS, ISTIO, ARGO_CD_CRDS)


def components(rollouts_version: str) -> tuple[Component, ...]:
    """``COMPONENTS`` with the Argo Rollouts build of ``rollouts_version``."""
    rollouts = argo_rollouts(rollouts_version)
    return tuple(rollouts if c is ARGO_ROLLOUTS else c for c in COMPONENTS)

# Argo CD itself, built only when the local target runs it (`bgh up --with-argocd`): the one
# multi-call binary of cmd/main.go (ARGOCD_BINARY_NAME picks the component, as upstream's
# Procfile runs it), the base config its install manifests apply, and the two scripts its image
# puts on the repo server's PATH (it runs git-verify-wrapper.sh on every manifest request).
ARGO_CD = Component(
    "argo-cd",
    "github.com/argoproj/argo-cd/v3",
    versions.ARGO_CD,
    {"argocd": "github.com/argoproj/argo-cd/v3/cmd"},
    {
        "config": "manifests/base/config/argocd-*.yaml",
        "bin": ("hack/git-verify-wrapper.sh", "hack/gpg-wrapper.sh"),
    },
    ldflags=(f"-X github.com/argoproj/argo-cd/v3/common.version={versions.ARGO_CD}",),
)

# Tools the harness runs itself, not part of any target: Helm renders gitops/.
HELM = Component("helm", "helm.sh/helm/v4", versions.HELM, {"helm": "helm.sh/helm/v4/cmd/helm"})
# actionlint checks every workflow under .github/workflows (tests/unit/test_workflows.py).
ACTIONLINT = Component(
    "actionlint",
    "github.com/rhysd/actionlint",
    versions.ACTIONLINT,
    {"actionlint": "github.com/rhysd/actionlint/cmd/actionlint"},
)


@dataclass(frozen=True)
class Built:
    """Where one component's binaries are, and whether this call had to build them."""

    component: Component
    directory: Path
    seconds: float
    cached: bool

    def path(self, binary: str) -> Path:
        return self.directory / binary


def is_built(component: Component, cache_dir: Path) -> bool:
    directory = component.install_dir(cache_dir)
    return all((directory / name).is_file() for name in component.binaries) and all(
        (directory / dest).is_dir() for dest in component.assets
    )


def ensure_built(
    component: Component,
    *,
    cache_dir: Path,
    go: str = "go",
    timeout: float = 3600.0,
    report: Report = lambda _line: None,
) -> Built:
    """Return the component's binaries, building them first when the cache lacks them.

    The build goes to a staging directory beside the cache entry and is renamed into place only
    once complete, so an interrupted build never looks built.
    """
    directory = component.install_dir(cache_dir)
    if is_built(component, cache_dir):
        return Built(component, directory, 0.0, cached=True)
    go_path = _go_command(component, go)
    logs = cache_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"build-{component.name}-{component.version}.log"
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{component.name}-", dir=directory.parent))
    env = {
        **os.environ,
        # A wrapper may ask for a newer patch release than the machine's Go; the toolchain
        # comes from the module proxy, checked against the checksum database.
        "GOTOOLCHAIN": "auto",
        "CGO_ENABLED": "0",
    }
    what = ", ".join(component.binaries) or ", ".join(map(str, component.assets.values()))
    report(f"building {component.name} {component.version} ({what})")
    started = time.monotonic()
    try:
        _go_build(component, go_path, staging, env, log_path, timeout)
        try:
            _copy_assets(component, staging, go_path, env)
        except (OSError, subprocess.CalledProcessError, ValueError) as exc:
            raise TargetError(
                f"copying {component.name} {component.version} assets "
                f"{dict(component.assets)} from the module cache failed: {exc}"
            ) from exc
    except TargetError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    seconds = time.monotonic() - started
    (staging / "BUILD-INFO").write_text(
        f"{component.module} {component.version}\nbuilt in {seconds:.1f}s\n"
    )
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    report(f"built {component.name} {component.version} in {seconds:.0f}s")
    return Built(component, directory, seconds, cached=False)


def _go_command(component: Component, go: str) -> str:
    go_path = shutil.which(go)
    if go_path is None:
        raise ConfigError(
            f"cannot build {component.name} {component.version}: the Go command {go!r} is not "
            "on PATH; install Go 1.26 or set BGH_LOCAL__GO to its path (e.g. /usr/local/go/bin/go)"
        )
    return go_path


def _go_build(
    component: Component,
    go_path: str,
    staging: Path,
    env: Mapping[str, str],
    log_path: Path,
    timeout: float,
) -> None:
    """``go build`` the component's binaries into ``staging`` (or, for data files only, ``go mod
    download`` its module), logging to ``log_path``; a TargetError naming the log on failure."""
    command = [
        go_path,
        "build",
        "-mod=readonly",
        "-trimpath",
        "-ldflags=" + " ".join(("-s", "-w", *component.ldflags)),
        "-o",
        str(staging) + os.sep,
        *component.binaries.values(),
    ]
    if not component.binaries:
        # Data files only: download the module (checked against the wrapper's go.sum), no build.
        command = [go_path, "mod", "download", f"{component.module}@{component.version}"]
    try:
        with log_path.open("w") as log:
            log.write("$ " + " ".join(command) + f"\n  (in {component.wrapper})\n")
            log.flush()
            result = subprocess.run(
                command,
                cwd=component.wrapper,
                env=dict(env),
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
    except subprocess.TimeoutExpired as exc:
        raise TargetError(
            f"building {component.name} {component.version} took longer than {timeout:.0f}s\n"
            f"  command: {' '.join(command)}\n  log: {log_path}"
        ) from exc
    if result.returncode != 0:
        raise TargetError(
            f"building {component.name} {component.version} failed (exit {result.returncode})\n"
            f"  command: {' '.join(command)} (in {component.wrapper})\n"
            f"  log: {log_path}\n{log_tail(log_path)}"
        )
    for binary, package in component.binaries.items():
        built_as = staging / _go_output_name(package)
        if built_as.name != binary:
            built_as.rename(staging / binary)


def _copy_assets(component: Component, staging: Path, go: str, env: Mapping[str, str]) -> None:
    if not component.assets:
        return
    listing = subprocess.run(
        [go, "mod", "download", "-json", f"{component.module}@{component.version}"],
        cwd=component.wrapper,
        env=dict(env),
        capture_output=True,
        text=True,
        check=True,
    )
    module_dir = Path(json.loads(listing.stdout)["Dir"])
    for dest, sources in component.assets.items():
        (staging / dest).mkdir()
        for source in (sources,) if isinstance(sources, str) else sources:
            files = sorted(module_dir.glob(source))
            if not files:
                raise ValueError(f"no files match {source} in {module_dir}")
            for file in files:
                copied = staging / dest / file.name
                shutil.copyfile(file, copied)
                if copied.suffix == ".sh":
                    copied.chmod(0o755)


def _go_output_name(package: str) -> str:
    """The file name `go build -o dir/` gives a main package: its last path element, or the one
    before it when that is a major-version suffix (go.etcd.io/etcd/server/v3 -> server)."""
    parts = package.rstrip("/").split("/")
    last = parts[-1]
    if len(parts) > 1 and last[:1] == "v" and last[1:].isdigit():
        return parts[-2]
    return last


DEMO_SERVICES = ("gateway-a", "service-b", "service-c")


def build_demo_services(
    services_dir: Path, out_dir: Path, *, go: str = "go", report: Report = lambda _line: None
) -> Path:
    """Build the demo system's three binaries into ``out_dir``; Go's build cache makes a rebuild
    of unchanged sources take a second."""
    go_path = shutil.which(go)
    if go_path is None:
        raise ConfigError(
            f"cannot build the demo services: the Go command {go!r} is not on PATH; install Go "
            "1.26 or set BGH_LOCAL__GO to its path (e.g. /usr/local/go/bin/go)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [go_path, "build", "-o", str(out_dir) + os.sep, *(f"./{s}" for s in DEMO_SERVICES)]
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=services_dir, capture_output=True, text=True, check=False,
        env={**os.environ, "CGO_ENABLED": "0"},
    )  # fmt: skip
    if result.returncode != 0:
        raise TargetError(
            f"building the demo services failed (exit {result.returncode})\n"
            f"  command: {' '.join(command)} (in {services_dir})\n{result.stderr[-2000:]}"
        )
    report(f"demo services built in {time.monotonic() - started:.1f}s")
    return out_dir
