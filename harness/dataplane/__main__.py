"""``python -m harness.dataplane``: the local target's data plane as one long-running process.

``bgh up`` starts it beside the control plane and ``bgh down`` stops it (SIGTERM: every pod
process is stopped and every listener drained). It serves, on loopback:

- ``GET /healthz``: 200 once every informer has listed its kind, 503 before;
- ``GET /state``: what runs where (pods, addresses, Service listeners, problems), as JSON.

It writes each pod's readiness back to the pod's status, as the kubelet would
(harness/dataplane/status.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from harness.dataplane.informer import Informer
from harness.dataplane.networks import claim_networks
from harness.dataplane.plane import DataPlane
from harness.errors import HarnessError
from harness.kube import POD, Kind, Kube


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.dataplane", description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--binaries", type=Path, required=True, help="the demo services' binaries")
    parser.add_argument("--run-dir", type=Path, required=True, help="pod logs go under it")
    parser.add_argument("--targets-file", type=Path, help="Prometheus file_sd targets to write")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="the /healthz and /state port")
    parser.add_argument("--namespace", action="append", help="serve only these (default: all)")
    parser.add_argument("--revision", help="the sources' digest, so `bgh up` sees a change")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout
    )
    # A line per readiness probe (one a second per pod) would drown the pods' own changes.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for service in ("gateway-a", "service-b", "service-c"):
        if not (args.binaries / service).is_file():
            parser.error(f"--binaries {args.binaries}: no {service} binary there")
    try:
        kube = Kube(kubeconfig=args.kubeconfig, context=None, namespace="default")
        networks = claim_networks()
    except HarnessError as exc:
        parser.error(str(exc))
    logging.getLogger("bgh.dataplane").info(
        "loopback networks (slot %d): pods %s, Services %s",
        networks.slot,
        networks.pods,
        networks.services,
    )
    plane = DataPlane(
        binaries=args.binaries,
        run_dir=args.run_dir,
        targets_file=args.targets_file,
        namespaces=frozenset(args.namespace) if args.namespace else None,
        write_status=lambda namespace, name, patch: _write_status(kube, namespace, name, patch),
        pod_network=networks.pods,
        service_network=networks.services,
    )
    loop = asyncio.new_event_loop()
    try:
        server = ThreadingHTTPServer((args.host, args.port), _handler(plane, loop))
    except OSError as exc:
        print(
            f"data plane: cannot listen on {args.host}:{args.port} for /healthz and /state: "
            f"{exc}; stop what uses it or pick another port (BGH_LOCAL__DATAPLANE_PORT)",
            file=sys.stderr,
        )
        return 2
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    try:
        loop.run_until_complete(_serve(kube, plane))
    finally:
        server.shutdown()
        loop.close()
    return 0


async def _serve(kube: Kube, plane: DataPlane) -> None:
    loop = asyncio.get_running_loop()
    stop = threading.Event()

    def post(kind: Kind, event: str, obj: Any) -> None:
        loop.call_soon_threadsafe(plane.apply, kind, event, obj)

    for kind in DataPlane.KINDS:
        Informer(kube, kind, post, stop).start()
    task = asyncio.create_task(plane.run())
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    stop.set()
    logging.getLogger("bgh.dataplane").info("stopped: every pod process and listener is down")


def _write_status(kube: Kube, namespace: str, name: str, patch: dict[str, Any]) -> None:
    kube.patch(POD, name, patch, subresource="status", namespace=namespace)


def _handler(plane: DataPlane, loop: asyncio.AbstractEventLoop) -> type[BaseHTTPRequestHandler]:
    async def read_state() -> dict[str, Any]:
        return plane.state()  # on the loop's thread, so nothing changes while it is read

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                ready = plane.ready
                self._send(200 if ready else 503, {"ready": ready, "synced": sorted(plane.synced)})
            elif self.path == "/state":
                state = asyncio.run_coroutine_threadsafe(read_state(), loop).result(timeout=5)
                self._send(200, state)
            else:
                self._send(404, {"error": f"no {self.path}; try /healthz or /state"})

        def _send(self, code: int, body: object) -> None:
            data = json.dumps(body, indent=2).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # probes poll /state; their lines would drown the pod log lines

    return Handler


if __name__ == "__main__":
    sys.exit(main())
