"""The data plane's pod processes with the real service binaries on loopback: started, probed
ready through the data plane's one shared probe client, stopped."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest

from harness.dataplane.pods import PodProcess, probe_client
from harness.targets.processes import free_port


def test_starting_pods_loads_no_ca_bundle_on_the_data_planes_loop(
    service_binaries: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every hop of the local target (user to gateway A, A to B and C) goes through the data
    plane's one event loop. A readiness prober that built its own HTTP client per pod start
    loaded a CA bundle there (about 30 ms of CPU each; a release starts six pods at once, and
    under load that became a stall long enough for A's 500 ms calls to B and C to time out).

    ``load_verify_locations`` is wrapped to count its calls, not replaced: it still runs."""
    loads: list[Any] = []
    real = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        real(self, *args, **kwargs)

    async def scenario() -> None:
        client = probe_client()
        monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
        all_ready = asyncio.Event()
        pods: list[PodProcess] = []

        def changed() -> None:
            if pods and all(p.ready for p in pods):
                all_ready.set()

        for n in range(3):
            port, ops = free_port(), free_port()
            pods.append(
                PodProcess(
                    namespace="demo",
                    name=f"service-b-{n}",
                    uid=f"uid-{n}",
                    argv=[str(service_binaries / "service-b")],
                    env={
                        "HOST": "127.0.0.1",
                        "PORT": str(port),
                        "METRICS_PORT": str(ops),
                        "VERSION": "1.0.0",
                    },
                    address="127.0.0.1",
                    ready_url=f"http://127.0.0.1:{ops}/readyz",
                    log_path=tmp_path / f"service-b-{n}.log",
                    probe_client=client,
                    on_change=changed,
                )
            )
        for pod in pods:
            pod.start()
        try:
            await asyncio.wait_for(all_ready.wait(), 15)
        finally:
            await asyncio.gather(*(p.stop(grace=5) for p in pods))
            await client.aclose()

    asyncio.run(scenario())
    assert loads == []
