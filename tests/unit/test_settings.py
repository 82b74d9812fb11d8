"""Settings: defaults, environment precedence, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.settings import Settings, load_settings


def test_defaults_need_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BGH_TARGET", "BGH_NAMESPACE", "BGH_TIMEOUT_SCALE"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert (settings.target, settings.namespace, settings.deadlines.rollout) == (
        "local",
        "demo",
        120.0,
    )


def test_nested_variable_and_scale_multiply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BGH_TIMEOUTS__ROLLOUT", "30")
    monkeypatch.setenv("BGH_TIMEOUT_SCALE", "2.5")
    assert load_settings().deadlines.rollout == 75.0


def test_option_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BGH_NAMESPACE", "from-env")
    assert load_settings(namespace="from-option").namespace == "from-option"


def test_bad_environment_value_names_variable_value_and_example(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BGH_TIMEOUT_SCALE", "fast")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "BGH_TIMEOUT_SCALE='fast'" in message
    assert "e.g. BGH_TIMEOUT_SCALE=2" in message


def test_bad_nested_value_names_the_nested_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BGH_TIMEOUTS__PROBE", "-1")
    with pytest.raises(ConfigError, match=r"BGH_TIMEOUTS__PROBE='-1'"):
        load_settings()


def test_unknown_target_is_refused_with_the_option_named() -> None:
    with pytest.raises(ConfigError, match=r"option --target='minikube'"):
        load_settings(target="minikube")


def test_every_field_documents_itself() -> None:
    undocumented = [
        name
        for name, field in Settings.model_fields.items()
        if field.description is None and name not in ("timeouts", "local", "kind")
    ]
    assert undocumented == []


def test_default_paths_are_the_projects_whatever_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("BGH_GITOPS_DIR", "BGH_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert (settings.gitops_dir / "envs" / "prod_version.yaml").is_file()
    assert settings.state_dir.parent == settings.gitops_dir.parent


def test_a_path_the_user_gives_is_taken_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BGH_GITOPS_DIR", "elsewhere/gitops")
    assert load_settings().gitops_dir == Path("elsewhere/gitops")


def test_a_rollouts_version_without_a_pinned_build_names_the_ones_there_are() -> None:
    with pytest.raises(ConfigError, match=r"option --rollouts-version='v1.8.0'.*v1.10.2"):
        load_settings(rollouts_version="v1.8.0")
    assert load_settings(rollouts_version="v1.9.3").rollouts_version == "v1.9.3"
