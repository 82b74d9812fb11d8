"""services/compose.yaml brought up for real with Docker: gateway A answers with the versions B
and C gave it. On a machine where bgh set Docker up, the base images are the local ones the kind
target builds (GO_IMAGE, RUNTIME_IMAGE); elsewhere the Dockerfile's own are pulled."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.settings import load_settings
from harness.targets.kind import SERVICES_DIR, docker_host
from harness.targets.kind.docker import Docker
from harness.targets.kind.images import LocalImages
from harness.targets.kind.node_image import NodeImageBuilder
from harness.targets.processes import free_port
from harness.waits import poll

COMPOSE = shutil.which("docker-compose")
pytestmark = pytest.mark.skipif(
    COMPOSE is None or docker_host.server_version(docker_host.client()) is None,
    reason="needs docker-compose and a Docker daemon (`bgh docker-setup`, "
    "apt-get install docker-compose)",
)


@pytest.fixture
def compose(tmp_path: Path) -> Iterator[tuple[list[str], dict[str, str]]]:
    settings = load_settings()
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_PORT": str(port),
        "SERVICE_C_PORT": str(free_port()),
        "VERSION_A": "1.0.0",
        "VERSION_B": "1.1.0",
        "VERSION_C": "1.2.0",
        "COMPOSE_PROJECT_NAME": f"bgh-compose-{port}",
    }
    if docker_host.set_up_here():
        docker = Docker(docker_host.client(), log_dir=tmp_path)
        images = LocalImages(
            NodeImageBuilder(docker, cache_dir=settings.cache_dir, report=lambda _line: None),
            services_dir=SERVICES_DIR,
            report=lambda _line: None,
        )
        env |= {"GO_IMAGE": images.go_image(), "RUNTIME_IMAGE": images.runtime_image()}
    argv = [str(COMPOSE), "-f", str(SERVICES_DIR / "compose.yaml")]
    try:
        yield argv, env
    finally:
        subprocess.run([*argv, "down", "--timeout", "5"], env=env, capture_output=True, check=False)


def test_gateway_a_answers_with_the_versions_of_b_and_c(
    compose: tuple[list[str], dict[str, str]],
) -> None:
    argv, env = compose
    up = subprocess.run(
        [*argv, "up", "-d", "--build"], env=env, capture_output=True, text=True, check=False,
        timeout=900,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr[-3000:]
    url = f"http://127.0.0.1:{env['GATEWAY_PORT']}/versions"

    def ask() -> httpx.Response | None:
        try:
            return httpx.get(url, timeout=2.0)
        except httpx.HTTPError:
            return None

    response, ok = poll(ask, lambda r: r is not None and r.status_code == 200, within=60)
    assert ok, f"GET {url}: {response.status_code if response else 'no answer'}"
    assert response is not None
    body = response.json()
    assert (body["a"], body["b"], body["c"]) == ("1.0.0", "1.1.0", "1.2.0")
