"""kubectl as a subprocess: the one route besides ``harness.kube``'s client to the API server.

Used where kubectl itself is the point: server-side apply of rendered manifests (with schemas and
admission checked by the server), a namespace created the way a person would, and the local
control plane's bring-up (CRDs, waits for nodes, ``/readyz``). Its failure is a ``TargetError``
with the command and kubectl's own words. (The kind target's plan lists its kubectl commands
itself: they are steps of upstream's install docs.)
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError, TargetError, indent_tail
from harness.settings import Settings


@dataclass(frozen=True)
class Kubectl:
    """The kubectl binary bound to one kubeconfig and context; with ``log``, every command and
    its output are appended to that file, which a failure then names."""

    binary: Path
    kubeconfig: Path | None
    context: str | None
    log: Path | None = None
    impersonate: str | None = None  # act as this user, as `kubectl --as` (BGH_IMPERSONATE)

    def run(self, *argv: str, stdin: str | None = None) -> str:
        result = self.attempt(*argv, stdin=stdin)
        if result.returncode != 0:
            command = " ".join(result.args)
            where = f"  log: {self.log}\n" if self.log is not None else ""
            raise TargetError(
                f"kubectl failed (exit {result.returncode})\n  command: {command}\n{where}"
                + indent_tail(result.stderr or result.stdout, lines=30)
            )
        return result.stdout

    def attempt(self, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run one command and return how it went, failed or not."""
        command = [str(self.binary)]
        if self.kubeconfig is not None:
            command.append(f"--kubeconfig={self.kubeconfig}")
        if self.context:
            command.append(f"--context={self.context}")
        if self.impersonate:
            command.append(f"--as={self.impersonate}")
        command.extend(argv)
        result = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            with self.log.open("a") as out:
                out.write(
                    f"$ {' '.join(command)}\n{result.stdout}{result.stderr}"
                    f"(exit {result.returncode})\n"
                )
        return result

    def is_ready(self) -> tuple[bool, str]:
        """Whether the API server's ``/readyz`` answers ok (within 2 s), and what it said."""
        result = self.attempt("get", "--raw", "/readyz", "--request-timeout=2s")
        return result.returncode == 0, (result.stdout + result.stderr).strip()

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

    def apply_manifest(self, text: str, *, namespace: str, source: str = "manifest") -> str:
        """Server-side apply every document of a multi-document YAML manifest into
        ``namespace`` (an AnalysisTemplate, a Rollout and its Services, ...); ``source`` names
        the text in errors."""
        try:
            documents = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
        for index, document in enumerate(documents, start=1):
            if not isinstance(document, dict) or not {"apiVersion", "kind"} <= set(document):
                raise ConfigError(
                    f"{source}: document {index} is not a Kubernetes object; expected a "
                    "mapping with apiVersion, kind and metadata.name"
                )
        if not documents:
            raise ConfigError(f"{source}: no object to apply (empty manifest)")
        return self.apply(documents, namespace=namespace)

    def ensure_namespace(self, namespace: str) -> None:
        """Create ``namespace`` unless it exists, labelled for Istio's sidecar injection: the
        demo system's routes only apply to pods with a sidecar, in every namespace it runs in.
        Reading first means an identity bound only inside the namespace (gitops/rbac/) needs
        no write on a Namespace that is already there."""
        if self.run("get", "namespace", namespace, "--ignore-not-found", "-o", "name"):
            return
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


def kubectl_on_path(
    settings: Settings, *, needed_by: str, kubeconfig: Path | None = None
) -> Kubectl:
    """The kubectl on PATH, bound to ``kubeconfig`` (else the settings') and the settings'
    context; a ConfigError saying who needs it when there is none."""
    found = shutil.which("kubectl")
    if found is None:
        raise ConfigError(f"{needed_by} needs kubectl on PATH")
    return Kubectl(
        Path(found),
        kubeconfig or settings.kubeconfig,
        settings.context,
        impersonate=settings.impersonate,
    )


def _in_namespace(obj: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    placed = dict(obj)
    placed["metadata"] = {**(obj.get("metadata") or {}), "namespace": namespace}
    return placed
