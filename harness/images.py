"""What each demo service image is built with: ``services/builds.yaml``, read once for every
place that builds or imitates an image.

An image built from ``services/Dockerfile`` gets the build arguments ``SERVICE`` and ``VERSION``
and those ``services/builds.yaml`` lists for that service and version (gateway A's
``GREETING``): the release workflow and the kind target pass them to ``docker build``
(``build_args``). Such an image has ``ENV VERSION`` (its tag) and ``IMAGE_GREETING``. The local
target's data plane runs one binary per service for every version, without images, so it sets
that environment itself (``image_env``): the same version behaves alike everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.errors import ConfigError

BUILDS_FILE = Path(__file__).resolve().parents[1] / "services" / "builds.yaml"
# Build argument -> the image's environment variable (services/Dockerfile's ENV line).
IMAGE_ENV = {"GREETING": "IMAGE_GREETING"}


@dataclass(frozen=True)
class Builds:
    """The build arguments of every listed (service, version)."""

    arguments: Mapping[str, Mapping[str, Mapping[str, str]]]

    @classmethod
    def load(cls, path: Path = BUILDS_FILE) -> Builds:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read the build table {path}: {exc}") from exc
        arguments: dict[str, dict[str, dict[str, str]]] = {}
        for service, versions in data.items():
            for version, args in (versions or {}).items():
                unknown = set(args or {}) - set(IMAGE_ENV)
                if unknown:
                    raise ConfigError(
                        f"{path}: {service} {version}: unknown build argument(s) "
                        f"{', '.join(sorted(unknown))}; expected one of {', '.join(IMAGE_ENV)}"
                    )
                arguments.setdefault(str(service), {})[str(version)] = {
                    str(k): str(v) for k, v in (args or {}).items()
                }
        return cls(arguments)

    def build_args(self, service: str, version: str) -> dict[str, str]:
        """Every ``--build-arg`` of ``services/Dockerfile`` for ``service`` at ``version``."""
        return {
            "SERVICE": service,
            "VERSION": version,
            **self.arguments.get(service, {}).get(version, {}),
        }

    def image_env(self, service: str, version: str) -> dict[str, str]:
        """What ``ENV`` the image of ``service`` at ``version`` has, as the Dockerfile sets it."""
        args = self.build_args(service, version)
        env = {"VERSION": version}
        env |= {variable: args.get(argument, "") for argument, variable in IMAGE_ENV.items()}
        return env
