"""A kind node image built without pulling anything, for machines that reach no image registry.

It follows kind's own recipe, read from the pinned kind module (``images/base/Dockerfile`` and
``images/base/files/``, ``pkg/build/nodeimage/``), with what is available here instead:

- the base is a debootstrap root filesystem (``rootfs.NODE``) with Debian's containerd, runc and
  CNI plugins (linked where kind's units expect them), kind's files copied over it, and kind's
  ``RUN`` steps (unit pruning, ``systemctl enable``, ``cri-base.json`` from ``ctr oci spec``);
- containerd's config drops the fuse-overlayfs proxy plugin (rootless only), pins the sandbox
  image kubeadm expects, and sets ``restrict_oom_score_adj`` (the node cannot lower it here);
- kindnetd cannot be built, so the cluster runs with ``disableDefaultCNI`` and the image carries
  a bridge + host-local CNI config for the node's pod /24 (single node);
- the Kubernetes binaries, crictl, CoreDNS and pause are built from the Go module proxy
  (``binaries``); the control-plane, kube-proxy, CoreDNS, etcd and pause images are made from
  them and imported into the node's containerd as kind's node-image build does;
- the node guard (``egress_guard.NODE_GUARD_SCRIPT``) runs before containerd starts.

The image is tagged ``bgh.local/kind-node:<kubernetes version>-<key>``, the key hashing every
input, so a second build is a ``docker image inspect``.
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
from dataclasses import dataclass
from pathlib import Path

from harness import builds, versions
from harness.errors import ConfigError, TargetError
from harness.targets.kind import binaries, egress_guard, rootfs
from harness.targets.kind.docker import Docker, static_root

Report = Callable[[str], None]

KIND_MODULE = "sigs.k8s.io/kind"
PAUSE_SOURCE = Path(__file__).parent / "pause"
REPOSITORY = "bgh.local/kind-node"
# The cluster's address ranges: kind's defaults, written into the kind config and the node guard.
POD_SUBNET = "10.244.0.0/16"
NODE_POD_SUBNET = "10.244.0.0/24"
SERVICE_SUBNET = "10.96.0.0/16"
# kubeadm v1.34 asks for etcd 3.6; the local target's etcd release runs under its own tag,
# chosen with a ClusterConfiguration patch (``etcd.local.imageTag``).
ETCD_TAG = f"{versions.ETCD.removeprefix('v')}-0"
REGISTRY = "registry.k8s.io"

CNI_CONFIG = {
    "cniVersion": "0.4.0",
    "name": "bgh-bridge",
    "plugins": [
        {
            "type": "bridge",
            "bridge": "cni0",
            "isGateway": True,
            "ipMasq": True,
            "hairpinMode": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": NODE_POD_SUBNET}]],
                "routes": [{"dst": "0.0.0.0/0"}],
            },
        },
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}

# kind's fallback storage class (installstorage.defaultStorageManifest): no provisioner image.
STORAGE_MANIFEST = """\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/host-path
"""

# kind's images/base/Dockerfile RUN steps, on Debian's packages instead of kind's builds.
NODE_SETUP = """\
set -eu
chmod 755 /kind /kind/bin
find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
  /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
  /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >> /etc/systemd/journald.conf
ln -sf /usr/lib/systemd/systemd /sbin/init
for binary in containerd ctr containerd-shim-runc-v2; do
  ln -sf /usr/bin/$binary /usr/local/bin/$binary
done
mkdir -p /opt/cni/bin /etc/kubernetes/manifests
for plugin in /usr/lib/cni/*; do ln -sf "$plugin" /opt/cni/bin/; done
systemctl enable kubelet.service containerd.service undo-mount-hacks.service bgh-node-guard.service
systemctl mask systemd-binfmt.service
hook='{"path": "/kind/bin/mount-product-files.sh"}'
ctr oci spec \
  | jq ".hooks.createContainer[.hooks.createContainer| length] |= . + $hook" \
  | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json
"""

NODE_ENTRYPOINT = '["/usr/local/bin/entrypoint", "/sbin/init"]'


@dataclass(frozen=True)
class NodeImage:
    reference: str
    seconds: float
    cached: bool


def containerd_config(kind_config: str) -> str:
    """kind's containerd config, changed for this node image (see the module docstring)."""
    start = kind_config.index("[proxy_plugins]")
    end = kind_config.index("[plugins.", start)
    text = kind_config[:start] + kind_config[end:]
    replacements = {
        'sandbox_image = "registry.k8s.io/pause:': (
            f'sandbox_image = "{REGISTRY}/pause:{versions.PAUSE}"'
        ),
        "restrict_oom_score_adj = false": "restrict_oom_score_adj = true",
    }
    for old, new in replacements.items():
        lines = [line for line in text.splitlines() if old in line]
        if len(lines) != 1:
            raise TargetError(
                f"kind {versions.KIND}'s containerd config.toml has {len(lines)} lines with "
                f"{old!r}, expected one; the node image recipe needs updating for this kind"
            )
        indent = lines[0][: len(lines[0]) - len(lines[0].lstrip())]
        text = text.replace(lines[0], indent + new)
    return text


def component_images(tag_etcd: str = ETCD_TAG) -> dict[str, tuple[str, str]]:
    """{image reference: (binary, its path in the image)} for the static-binary images
    kubeadm's pods run; the paths are those of the upstream images (kubeadm's manifests name
    the commands, and CoreDNS's and pause's entrypoints are at the root)."""
    k8s = versions.KUBERNETES
    return {
        f"{REGISTRY}/kube-apiserver:{k8s}": ("kube-apiserver", "/usr/local/bin/kube-apiserver"),
        f"{REGISTRY}/kube-controller-manager:{k8s}": (
            "kube-controller-manager",
            "/usr/local/bin/kube-controller-manager",
        ),
        f"{REGISTRY}/kube-scheduler:{k8s}": ("kube-scheduler", "/usr/local/bin/kube-scheduler"),
        f"{REGISTRY}/coredns/coredns:{versions.COREDNS}": ("coredns", "/coredns"),
        f"{REGISTRY}/etcd:{tag_etcd}": ("etcd", "/usr/local/bin/etcd"),
        f"{REGISTRY}/pause:{versions.PAUSE}": ("pause", "/pause"),
    }


class NodeImageBuilder:
    """Builds (or finds) the node image; every input under ``<cache>/kind``."""

    def __init__(self, docker: Docker, *, cache_dir: Path, report: Report, go: str = "go") -> None:
        self.docker = docker
        self.cache_dir = cache_dir
        self.kind_cache = cache_dir / "kind"
        self.report = report
        self.go = go

    def kind_files(self) -> Path:
        """kind's ``images/base/files`` from the pinned module in Go's module cache."""
        return self.module_dir(KIND_MODULE, versions.KIND) / "images" / "base" / "files"

    def module_dir(self, module: str, version: str) -> Path:
        go = shutil.which(self.go)
        if go is None:
            raise ConfigError(f"building the kind node image needs Go: {self.go!r} is not on PATH")
        result = subprocess.run(
            [go, "mod", "download", "-json", f"{module}@{version}"],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
            cwd=tempfile.gettempdir(),
            env={**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "auto"},
        )
        if result.returncode != 0:
            raise TargetError(
                f"downloading {module}@{version} from the Go module proxy failed: "
                f"{(result.stderr or result.stdout).strip()[-800:]}"
            )
        return Path(json.loads(result.stdout)["Dir"])

    def key(self, built: Mapping[str, Path]) -> str:
        digest = hashlib.sha256()
        for part in (
            versions.KUBERNETES,
            versions.KIND,
            versions.COREDNS,
            versions.PAUSE,
            ETCD_TAG,
            rootfs.NODE.key(),
            rootfs.SLIM.key(),
            NODE_SETUP,
            json.dumps(CNI_CONFIG),
            egress_guard.NODE_GUARD_SCRIPT,
            egress_guard.NODE_GUARD_UNIT,
            STORAGE_MANIFEST,
            Path(__file__).read_text(),
            *sorted(str(p) for p in built.values()),
        ):
            digest.update(part.encode())
        return digest.hexdigest()[:12]

    def build_binaries(self) -> dict[str, Path]:
        """{binary name: path} for everything the node and its images carry."""
        found: dict[str, Path] = {}
        for component in binaries.NODE_COMPONENTS:
            built = builds.ensure_built(
                component, cache_dir=self.kind_cache, go=self.go, report=self.report
            )
            found.update({name: built.path(name) for name in component.binaries})
        etcd = builds.ensure_built(
            builds.ETCD, cache_dir=self.cache_dir, go=self.go, report=self.report
        )
        found["etcd"] = etcd.path("etcd")
        found["pause"] = self.build_pause()
        return found

    def build_pause(self) -> Path:
        digest = hashlib.sha256()
        for name in ("go.mod", "main.go"):
            digest.update((PAUSE_SOURCE / name).read_bytes())
        target = self.kind_cache / "bin" / f"pause-{digest.hexdigest()[:12]}" / "pause"
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [self.go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(target), "."],
            cwd=PAUSE_SOURCE,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
            env={**os.environ, "CGO_ENABLED": "0"},
        )
        if result.returncode != 0:
            raise TargetError(f"building pause failed: {result.stderr.strip()[-800:]}")
        return target

    def ensure(self) -> NodeImage:
        started = time.monotonic()
        built = self.build_binaries()
        reference = f"{REPOSITORY}:{versions.KUBERNETES}-{self.key(built)}"
        if self.docker.has_image(reference):
            return NodeImage(reference, time.monotonic() - started, cached=True)
        self.report(f"building kind node image {reference}")
        work = Path(tempfile.mkdtemp(prefix="node-", dir=self.build_dir()))
        try:
            base = self._base_image(work, built)
            self._preload(base, reference, work, built)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        seconds = time.monotonic() - started
        self.report(f"kind node image {reference} built in {seconds:.0f}s")
        return NodeImage(reference, seconds, cached=False)

    def build_dir(self) -> Path:
        directory = self.kind_cache / "build"
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def rootfs_image(self, which: rootfs.Rootfs) -> str:
        """The debootstrap root filesystem as a one-layer image (made once per key)."""
        reference = f"bgh.local/debian-{which.name}:{which.suite}-{which.key()}"
        if not self.docker.has_image(reference):
            directory = rootfs.ensure(which, cache_dir=self.cache_dir, report=self.report)
            self.report(f"importing {which.name} root filesystem as {reference}")
            self.docker.import_directory(
                directory,
                reference,
                changes=("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
            )
        return reference

    def _base_image(self, work: Path, built: Mapping[str, Path]) -> str:
        """kind's base image on the node root filesystem, with the Kubernetes binaries."""
        base = self.rootfs_image(rootfs.NODE)
        files = self.kind_files()
        root = work / "root"
        shutil.copytree(files, root, ignore=shutil.ignore_patterns("LICENSES", "*fuse-overlayfs*"))
        for path in [root, *root.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() or "bin" in path.parts else 0o644)
        (root / "etc/containerd/config.toml").write_text(
            containerd_config((files / "etc/containerd/config.toml").read_text())
        )
        (root / "kind/version").write_text(versions.KUBERNETES)
        (root / "kind/manifests").mkdir()
        (root / "kind/manifests/default-storage.yaml").write_text(STORAGE_MANIFEST)
        (root / "etc/cni/net.d").mkdir(parents=True)
        (root / "etc/cni/net.d/10-bgh-bridge.conflist").write_text(json.dumps(CNI_CONFIG, indent=2))
        (root / "etc/sysctl.d/20-bgh-bridge.conf").write_text(
            "# The bridge CNI's pod traffic must pass iptables (kube-proxy's Service rules).\n"
            "net.bridge.bridge-nf-call-iptables=1\n"
        )
        (root / "etc/default/bgh-node-guard").write_text(
            f"SERVICE_CIDR={SERVICE_SUBNET}\nPOD_CIDR={POD_SUBNET}\nNODE_POD_CIDR={NODE_POD_SUBNET}\n"
        )
        (root / "etc/systemd/system/bgh-node-guard.service").write_text(
            egress_guard.NODE_GUARD_UNIT
        )
        executables = {
            "usr/local/bin/bgh-node-guard": None,
            "usr/bin/kubelet": built["kubelet"],
            "usr/bin/kubeadm": built["kubeadm"],
            "usr/bin/kubectl": built["kubectl"],
            "usr/local/bin/crictl": built["crictl"],
        }
        for name, source in executables.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if source is None:
                path.write_text(egress_guard.NODE_GUARD_SCRIPT)
            else:
                shutil.copyfile(source, path)
            path.chmod(0o755)
        (work / "setup.sh").write_text(NODE_SETUP)
        (work / "Dockerfile").write_text(
            f"FROM {base}\nCOPY root/ /\nCOPY setup.sh /tmp/setup.sh\n"
            "RUN sh /tmp/setup.sh && rm /tmp/setup.sh\n"
        )
        reference = f"bgh.local/kind-base:{versions.KUBERNETES}-{work.name}"
        self.docker.build(work, reference, log_name="kind-base")
        return reference

    def _component_archive(self, work: Path, built: Mapping[str, Path]) -> list[str]:
        """Make the images kubeadm's pods run, in the local Docker; their references."""
        references: list[str] = []
        for reference, (binary, path) in component_images().items():
            archive = static_root(work / f"{binary}.tar", {path: built[binary]})
            self.docker.run(
                "import",
                "--change",
                f"ENTRYPOINT {json.dumps([path])}",
                "--change",
                "ENV PATH=/usr/local/bin:/usr/bin:/bin",
                str(archive),
                reference,
                what=f"importing image {reference}",
            )
            references.append(reference)
        # kube-proxy programs iptables: it needs iptables and conntrack, so a Debian base.
        proxy = f"{REGISTRY}/kube-proxy:{versions.KUBERNETES}"
        context = work / "kube-proxy"
        context.mkdir()
        shutil.copyfile(built["kube-proxy"], context / "kube-proxy")
        (context / "kube-proxy").chmod(0o755)
        (context / "Dockerfile").write_text(
            f"FROM {self.rootfs_image(rootfs.SLIM)}\nCOPY kube-proxy /usr/local/bin/kube-proxy\n"
        )
        self.docker.build(context, proxy, log_name="kube-proxy")
        references.append(proxy)
        return references

    def _preload(self, base: str, reference: str, work: Path, built: Mapping[str, Path]) -> None:
        """kind's nodeimage step: run the base, import the images into its containerd, commit."""
        images = self._component_archive(work, built)
        container = f"bgh-node-build-{work.name.removeprefix('node-')}".lower()
        self.docker.run(
            "run",
            "-d",
            "--privileged",
            "--name",
            container,
            "--entrypoint",
            "sleep",
            base,
            "infinity",
            what="starting the node image build container",
        )
        try:
            self.docker.run("exec", container, "bash", "-c", "nohup containerd > /dev/null 2>&1 &")
            self.docker.run(
                "exec",
                container,
                "bash",
                "-c",
                "for i in $(seq 50); do [ -S /run/containerd/containerd.sock ] && ctr version "
                ">/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1",
                what="waiting for containerd in the node image build container",
            )
            self.docker.pipe(
                [self.docker.client, "save", *images],
                "exec",
                "-i",
                container,
                "ctr",
                "--namespace=k8s.io",
                "images",
                "import",
                "--label=io.cri-containerd.pinned=pinned",
                "--all-platforms",
                "--no-unpack",
                "--digests",
                "-",
                what="importing the control-plane images into the node's containerd",
            )
            listed = self.docker.run(
                "exec", container, "ctr", "--namespace=k8s.io", "images", "list", "-q"
            ).split()
            missing = [image for image in images if image not in listed]
            if missing:
                raise TargetError(
                    f"the node's containerd lacks {', '.join(missing)} after the import; "
                    f"it lists: {', '.join(listed)}"
                )
            self.docker.run("exec", container, "pkill", "containerd")
            committed = f"{reference}-commit"
            self.docker.run("commit", container, committed, what="committing the node image")
        finally:
            subprocess.run(
                [self.docker.client, "rm", "-f", container],
                capture_output=True,
                check=False,
                timeout=120,
            )
        # Docker 20.10 cannot set STOPSIGNAL on commit; one metadata-only build step does.
        context = work / "final"
        context.mkdir()
        (context / "Dockerfile").write_text(
            f"FROM {committed}\nENV container=docker\nSTOPSIGNAL SIGRTMIN+3\n"
            f"ENTRYPOINT {NODE_ENTRYPOINT}\nCMD []\n"
        )
        self.docker.build(context, reference, log_name="kind-node")
        self.docker.run("rmi", committed, base, what="removing intermediate node images")
