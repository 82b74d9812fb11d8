"""Every pinned upstream version in one place, so the local and kind targets install the same."""

from __future__ import annotations

KUBERNETES = "v1.34.12"
ETCD = "v3.5.35"
KWOK = "v0.8.0"
# v1.10 drops the controller's write-back to its informer cache, which could lose a `promote`
# sent just after the controller paused (argoproj/argo-rollouts#4073, fixed by #4786); the
# harness promotes within milliseconds of seeing Paused, so it hits that race on older releases.
ARGO_ROLLOUTS = "v1.10.2"
# Other controller releases the local target can run instead (`bgh up --rollouts-version`), each
# with a wrapper module gomod/argo-rollouts-<version>/: the newest 1.9 patch, to see which
# upstream bugs a platform team's older controller still has.
ARGO_ROLLOUTS_OTHERS = ("v1.9.3",)
ARGO_CD = "v3.6.1"
ISTIO = "1.30.3"
# The Istio CRDs come from istio.io/api at the tag of the same release.
ISTIO_API = f"v{ISTIO}"
# The Helm release Argo CD v3.6.1 renders charts with (its hack/tool-versions.sh: HELM_VERSION).
HELM = "v4.3.1"

KIND = "v0.33.0"
# What a kind node image built on a machine that cannot pull carries beside Kubernetes: the
# CoreDNS and pause releases kubeadm v1.34 deploys (`kubeadm config images list`), crictl from
# the cri-tools release of the same minor, on a Debian base made with debootstrap.
COREDNS = "v1.12.1"
PAUSE = "3.10.1"
CRI_TOOLS = "v1.34.0"
DEBIAN_SUITE = "bookworm"
# kind v0.33.0's pre-built image for the newest Kubernetes 1.34 patch it ships, pinned by digest
# as kind's release notes ask; the local target builds v1.34.12 from source.
KIND_NODE_IMAGE = (
    "kindest/node:v1.34.11@sha256:44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d"
)

ARGO_ROLLOUTS_INSTALL = (
    f"https://github.com/argoproj/argo-rollouts/releases/download/{ARGO_ROLLOUTS}/install.yaml"
)
ARGO_CD_INSTALL = (
    f"https://raw.githubusercontent.com/argoproj/argo-cd/{ARGO_CD}/manifests/install.yaml"
)
# Prometheus on kind: the release Debian bookworm packages, which the local target runs. Where
# images can be pulled, upstream's image of it; elsewhere built from its Go module (Prometheus's
# module versions are v0.<minor>.<patch>), as Debian's build lacks Kubernetes service discovery.
PROMETHEUS = "v2.42.0"
PROMETHEUS_MODULE = "v0.42.0"
PROMETHEUS_IMAGE = f"quay.io/prometheus/prometheus:{PROMETHEUS}"

# Lints .github/workflows in the tests (its go.mod pins the module; built like the rest).
ACTIONLINT = "v1.7.12"
