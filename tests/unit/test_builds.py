"""Building components: cache hits, clear errors for a missing Go and a failing build.

These build tiny throw-away wrapper modules with the real Go toolchain; nothing is downloaded.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness import builds, versions
from harness.errors import ConfigError, TargetError


def _wrapper(tmp_path: Path, source: str) -> builds.Component:
    wrapper = tmp_path / "gomod" / "hello"
    (wrapper / "cmd" / "hello").mkdir(parents=True)
    (wrapper / "go.mod").write_text("module example.test/hello\n\ngo 1.22\n")
    (wrapper / "go.sum").write_text("")
    (wrapper / "tools.go").write_text("package tools\n")
    (wrapper / "cmd" / "hello" / "main.go").write_text(source)
    return builds.Component("hello", "example.test/hello", "v0.0.1", {"hello": "./cmd/hello"})


@pytest.fixture
def gomod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(builds, "GOMOD_DIR", tmp_path / "gomod")
    return tmp_path


needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain")


@needs_go
def test_build_then_cache_hit(gomod: Path) -> None:
    component = _wrapper(gomod, 'package main\n\nfunc main() { println("hi") }\n')
    cache = gomod / "cache"
    first = builds.ensure_built(component, cache_dir=cache)
    second = builds.ensure_built(component, cache_dir=cache)
    assert (first.cached, second.cached) == (False, True)
    assert first.path("hello").is_file()
    assert second.directory == first.directory


@needs_go
def test_a_changed_wrapper_gets_a_new_cache_entry(gomod: Path) -> None:
    component = _wrapper(gomod, "package main\n\nfunc main() {}\n")
    before = component.install_dir(gomod / "cache")
    (component.wrapper / "go.sum").write_text("# changed\n")
    assert component.install_dir(gomod / "cache") != before


@needs_go
def test_failed_build_names_component_command_and_log(gomod: Path) -> None:
    component = _wrapper(gomod, "package main\n\nfunc main() { undefinedThing() }\n")
    with pytest.raises(TargetError) as caught:
        builds.ensure_built(component, cache_dir=gomod / "cache")
    message = str(caught.value)
    assert "building hello v0.0.1 failed" in message
    assert "go build" in message
    assert "build-hello-v0.0.1.log" in message
    assert "undefined: undefinedThing" in message
    assert not builds.is_built(component, gomod / "cache")
    assert [p.name for p in (gomod / "cache" / "bin").iterdir()] == []


def test_missing_go_is_a_config_error_naming_the_setting(gomod: Path) -> None:
    component = _wrapper(gomod, "package main\n\nfunc main() {}\n")
    with pytest.raises(ConfigError, match="BGH_LOCAL__GO"):
        builds.ensure_built(component, cache_dir=gomod / "cache", go="no-such-go-command")


def test_pinned_components_have_their_wrappers_committed() -> None:
    for component in (*builds.COMPONENTS, *builds.ARGO_ROLLOUTS_RELEASES.values()):
        for part in ("go.mod", "go.sum", "tools.go"):
            assert (component.wrapper / part).is_file(), f"{component.name}: {part} missing"
        assert (
            f"{component.module} {component.version}" in (component.wrapper / "go.mod").read_text()
        )


def test_another_rollouts_release_is_its_own_build_beside_the_pinned_one() -> None:
    other = builds.argo_rollouts("v1.9.3")
    pinned = builds.argo_rollouts(versions.ARGO_ROLLOUTS)
    assert pinned is builds.ARGO_ROLLOUTS
    assert (other.name, other.binaries, other.assets) == (
        pinned.name,
        pinned.binaries,
        pinned.assets,
    )
    assert other.install_dir(Path("/c")) != pinned.install_dir(Path("/c"))
    assert other.install_dir(Path("/c")).name.startswith("argo-rollouts-v1.9.3-")
    assert other in builds.components("v1.9.3")
    assert pinned not in builds.components("v1.9.3")
    with pytest.raises(ConfigError, match=r"expected one of v1\.10\.2, v1\.9\.3"):
        builds.argo_rollouts("v1.8.0")
