"""Keep a copy of one kind of object (all namespaces, or one), fed by list-then-watch.

One thread per kind: list (every object, one ``SYNC`` that replaces the copy), then watch from the
list's resourceVersion; a dropped stream rewatches from the last resourceVersion seen, a 410 Gone
lists again, an unreachable API server (restarting, say) lists again after a capped backoff. Each
change is handed to ``post`` from the informer's thread; the data plane hops it onto its loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from harness.errors import Expired, HarnessError, NotFound, Unreachable
from harness.kube import Kind, Kube

log = logging.getLogger("bgh.dataplane")

Post = Callable[[Kind, str, Any], None]
"""(kind, "SYNC" with a list of objects | "ADDED" | "MODIFIED" | "DELETED" with one object)."""

WATCH_SECONDS = 300
MAX_BACKOFF = 5.0


class Informer:
    """List and watch ``kind`` in every namespace until ``stop`` is set."""

    def __init__(
        self,
        kube: Kube,
        kind: Kind,
        post: Post,
        stop: threading.Event,
        *,
        all_namespaces: bool = True,
    ) -> None:
        self.kube = kube
        self.kind = kind
        self.post = post
        self.stop = stop
        self.all_namespaces = all_namespaces  # False: the Kube client's namespace only
        self.thread = threading.Thread(
            target=self._run, name=f"informer-{kind.plural}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        backoff = 0.2
        while not self.stop.is_set():
            try:
                items, version = self.kube.list(self.kind, all_namespaces=self.all_namespaces)
            except NotFound:
                # The CRD is not installed (e.g. no Istio): nothing of this kind exists.
                log.warning("%s: the API has no such kind; treating it as empty", self.kind.plural)
                self.post(self.kind, "SYNC", [])
                self.stop.wait(30.0)
                continue
            except HarnessError as exc:
                log.warning(
                    "%s: list failed, retrying in %.1fs: %s", self.kind.plural, backoff, exc
                )
                self.stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = 0.2
            self.post(self.kind, "SYNC", items)
            try:
                self._watch(version)
            except Expired:
                log.info("%s: watch expired; listing again", self.kind.plural)
            except (Unreachable, HarnessError) as exc:
                log.warning("%s: watch failed; listing again: %s", self.kind.plural, exc)
                self.stop.wait(backoff)

    def _watch(self, version: str) -> None:
        while not self.stop.is_set():
            for kind_of_event, obj in self.kube.watch(
                self.kind,
                resource_version=version,
                timeout_seconds=WATCH_SECONDS,
                all_namespaces=self.all_namespaces,
            ):
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind_of_event in ("ADDED", "MODIFIED", "DELETED"):
                    self.post(self.kind, kind_of_event, obj)
            # The server ended the stream (timeout) or it dropped: watch again from where we were.
