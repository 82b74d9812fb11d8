"""The Dockerfile's build stage compiles what `go build` does, into a static binary, and its
runtime stage runs as a user the chart's securityContext admits.

No Docker engine runs here, so the image cannot be built; instead the build stage's own `go build`
line is read from the Dockerfile and run for each service, the stages and the runtime user are read
from it and checked against the securityContext the chart renders (with the real Helm), and
compose's build arguments are checked against the services that exist.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import gitops
from harness.gitops import GitOps
from harness.settings import load_settings

SERVICES_DIR = Path(__file__).parents[2] / "services"
GITOPS_DIR = Path(__file__).parents[2] / "gitops"
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


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = (SERVICES_DIR / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (line.partition(" ") for line in lines if line and line[0] != "#")
    ]


def global_args() -> dict[str, str]:
    """The ARGs before the first FROM, with their defaults."""
    args: dict[str, str] = {}
    for word, rest in instructions():
        if word == "FROM":
            break
        if word == "ARG":
            name, _, default = rest.partition("=")
            args[name] = default
    return args


def runtime_stage() -> list[tuple[str, str]]:
    ins = instructions()
    last_from = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    return ins[last_from:]


def test_build_and_runtime_bases_are_alpine_and_substitutable() -> None:
    """GO_IMAGE and RUNTIME_IMAGE are the names a local build substitutes its own bases through."""
    froms = [rest for word, rest in instructions() if word == "FROM"]
    assert froms == ["${GO_IMAGE} AS build", "${RUNTIME_IMAGE}"]
    args = global_args()
    assert args["GO_IMAGE"] == "golang:1.26-alpine"
    assert re.fullmatch(r"alpine:\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?", args["RUNTIME_IMAGE"]), (
        f"RUNTIME_IMAGE={args['RUNTIME_IMAGE']!r}: expected a pinned alpine, e.g. alpine:3.22.2"
    )


def test_runtime_stage_exposes_3000_labels_a_real_source_and_bakes_the_build_into_env() -> None:
    stage = runtime_stage()
    exposed = {port for word, rest in stage if word == "EXPOSE" for port in rest.split()}
    assert "3000" in exposed
    labels = " ".join(rest for word, rest in stage if word == "LABEL")
    source = re.search(r'org\.opencontainers\.image\.source="([^"]+)"', labels)
    assert source is not None and re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", source[1])
    env = " ".join(rest for word, rest in stage if word == "ENV")
    assert "VERSION=$VERSION" in env and "IMAGE_GREETING=$GREETING" in env


def kubelet_refuses(image_user: str, context: dict[str, object]) -> str | None:
    """Why the kubelet would refuse to start the container, or None.

    The rule of the kubelet's verifyRunAsNonRoot (pkg/kubelet/kuberuntime): with runAsNonRoot, a
    runAsUser in the pod wins and must not be 0; otherwise the image's user must be a number
    (a name cannot be checked without the image's /etc/passwd) and not 0.
    """
    if not context.get("runAsNonRoot"):
        return None
    if "runAsUser" in context:
        return "runAsUser breaks non-root policy" if context["runAsUser"] == 0 else None
    uid = image_user.split(":", 1)[0]
    if not uid.isdigit():
        return f"image has non-numeric user ({uid}), cannot verify user is non-root"
    return "image will run as root" if int(uid) == 0 else None


def test_the_runtime_user_is_numeric_and_the_charts_security_context_admits_it() -> None:
    (user,) = [rest for word, rest in runtime_stage() if word == "USER"]
    assert user == "65532:65532"
    assert kubelet_refuses("nonroot:nonroot", {"runAsNonRoot": True}) is not None  # the rule bites
    helm = gitops.helm_binary(load_settings())
    rollouts = [o for o in GitOps(GITOPS_DIR).render("qa", helm=helm) if o["kind"] == "Rollout"]
    assert len(rollouts) == len(SERVICES)
    for rollout in rollouts:
        (container,) = rollout["spec"]["template"]["spec"]["containers"]
        context = container["securityContext"]
        assert context == {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }, rollout["metadata"]["name"]
        assert kubelet_refuses(user, context) is None
