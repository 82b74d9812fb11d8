"""The Dockerfile's build stage compiles what `go build` does, into a static binary.

No Docker engine runs here, so the image cannot be built; instead the build stage's own `go build`
line is read from the Dockerfile and run for each service, and compose's build arguments are
checked against the services that exist.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
import yaml

SERVICES_DIR = Path(__file__).parents[2] / "services"
SERVICES = ("gateway-a", "service-b", "service-c")
PT_INTERP = 3

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain")


def build_line() -> str:
    text = (SERVICES_DIR / "Dockerfile").read_text().replace("\\\n", " ")
    runs = [line for line in text.splitlines() if line.startswith("RUN ") and "go build" in line]
    assert len(runs) == 1, "expected one RUN line with go build in the build stage"
    command = runs[0].split("&&")[-1].strip()
    assert command.startswith("CGO_ENABLED=0 go build"), command
    return command


def is_static(binary: Path) -> bool:
    """An ELF64 file with no PT_INTERP program header needs no dynamic loader."""
    data = binary.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2, "not an ELF64 binary"
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    types = [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    return PT_INTERP not in types


@pytest.mark.parametrize("service", SERVICES)
def test_build_stage_command_builds_a_static_binary(service: str, tmp_path: Path) -> None:
    command = build_line().replace('"./$SERVICE"', f"./{service}")
    command = command.replace("/out/service", str(tmp_path / "service"))
    subprocess.run(["sh", "-c", command], cwd=SERVICES_DIR, check=True, capture_output=True)
    assert is_static(tmp_path / "service")


def test_compose_builds_each_service_from_its_own_directory() -> None:
    compose = yaml.safe_load((SERVICES_DIR / "compose.yaml").read_text())
    for name, spec in compose["services"].items():
        assert spec["build"]["args"]["SERVICE"] == name
        assert (SERVICES_DIR / name / "main.go").is_file()
        assert re.fullmatch(rf"bluegreen-harness/{name}:\$\{{VERSION_\w:-[\d.]+\}}", spec["image"])
    assert sorted(compose["services"]) == sorted(SERVICES)
