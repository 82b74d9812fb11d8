"""The Go binaries a kind node image carries when no image can be pulled, built from the Go
module proxy like the local target's (``harness.builds``) and cached under
``<cache>/kind/bin/`` keyed by version and wrapper module.

The Kubernetes binaries report their release (``kubeadm`` picks the control-plane image tags
from its own version), so they get the version ldflags upstream's ``hack/lib/version.sh`` sets.
"""

from __future__ import annotations

from harness import versions
from harness.builds import Component


def _version_ldflags(version: str) -> tuple[str, ...]:
    major, minor = version.removeprefix("v").split(".")[:2]
    flags: list[str] = []
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {package}.gitVersion={version}",
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitTreeState=clean",
        ]
    return tuple(flags)


KUBERNETES_NODE = Component(
    "kubernetes-node",
    "k8s.io/kubernetes",
    versions.KUBERNETES,
    {
        "kubelet": "k8s.io/kubernetes/cmd/kubelet",
        "kubeadm": "k8s.io/kubernetes/cmd/kubeadm",
        "kubectl": "k8s.io/kubernetes/cmd/kubectl",
        "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
        "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
        "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
        "kube-proxy": "k8s.io/kubernetes/cmd/kube-proxy",
    },
    ldflags=_version_ldflags(versions.KUBERNETES),
)
COREDNS = Component(
    "coredns",
    "github.com/coredns/coredns",
    versions.COREDNS,
    {"coredns": "github.com/coredns/coredns"},
)
CRICTL = Component(
    "cri-tools",
    "sigs.k8s.io/cri-tools",
    versions.CRI_TOOLS,
    {"crictl": "sigs.k8s.io/cri-tools/cmd/crictl"},
    wrapper_name="cri-tools",
    ldflags=(f"-X sigs.k8s.io/cri-tools/pkg/version.Version={versions.CRI_TOOLS}",),
)

# Prometheus for the kind target's image where none can be pulled, with the version upstream's
# Makefile (promu) stamps, so `prometheus --version` and its build_info say v2.42.0.
PROMETHEUS = Component(
    "prometheus",
    "github.com/prometheus/prometheus",
    versions.PROMETHEUS_MODULE,
    {
        "prometheus": "github.com/prometheus/prometheus/cmd/prometheus",
        "promtool": "github.com/prometheus/prometheus/cmd/promtool",
    },
    ldflags=(
        f"-X github.com/prometheus/common/version.Version={versions.PROMETHEUS.removeprefix('v')}",
        f"-X github.com/prometheus/common/version.Branch=release-{versions.PROMETHEUS[1:5]}",
    ),
)

NODE_COMPONENTS: tuple[Component, ...] = (KUBERNETES_NODE, CRICTL, COREDNS)

# The kind CLI itself, pinned: the node image recipe and the kubeadm config it writes must match.
KIND_CLI = Component("kind", "sigs.k8s.io/kind", versions.KIND, {"kind": "sigs.k8s.io/kind"})
