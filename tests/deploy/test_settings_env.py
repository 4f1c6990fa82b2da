"""The deployment's variables agree with the service's one settings class.

Every ``R2REC_*`` variable the compose files set or read is a field of
`service.settings.Settings` (the one exception, ``R2REC_HOME``, is read by
`r2rec.paths.home`), and every field is both passed to the service container and listed
in .env.example; every variable the compose files interpolate is listed in .env.example
and nothing there goes unused; the values in both validate as `Settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.settings import Settings
from tests.deploy.tools import (
    BASE,
    COMPOSE_FILES,
    CPU,
    ENV_EXAMPLE,
    compose_config,
    interpolated_names,
    read_env_file,
)

PREFIX = str(Settings.model_config.get("env_prefix", ""))
# R2REC_* variables that are not service settings, with the code that reads them.
NON_SETTINGS = {"R2REC_HOME"}


def setting_names() -> set[str]:
    return {f"{PREFIX}{field}".upper() for field in Settings.model_fields}


def r2rec_names(names: set[str]) -> set[str]:
    return {name for name in names if name.startswith(PREFIX.upper())}


def compose_set_variables(config: dict[str, Any]) -> set[str]:
    """Variables the resolved compose config sets in any container or build."""
    names: set[str] = set()
    for service in config["services"].values():
        names |= set(service.get("environment") or {})
        names |= set((service.get("build") or {}).get("args") or {})
    return names


@pytest.fixture(scope="module")
def full_config() -> dict[str, Any]:
    return compose_config(BASE, CPU, profiles=["trainer"])


def test_prefix_is_r2rec() -> None:
    assert PREFIX == "R2REC_"


def test_the_non_setting_variable_is_real(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from common.paths import home

    monkeypatch.setenv("R2REC_HOME", str(tmp_path / "elsewhere"))
    assert home() == (tmp_path / "elsewhere").resolve()
    assert not NON_SETTINGS & setting_names()


def test_every_r2rec_variable_compose_sets_is_a_setting(full_config: dict[str, Any]) -> None:
    unknown = r2rec_names(compose_set_variables(full_config)) - setting_names() - NON_SETTINGS
    assert unknown == set()


def test_every_r2rec_variable_compose_reads_is_a_setting() -> None:
    assert r2rec_names(interpolated_names(*COMPOSE_FILES)) - setting_names() == set()


def test_every_setting_reaches_the_service_container(full_config: dict[str, Any]) -> None:
    passed = set(full_config["services"]["service"]["environment"])
    assert setting_names() - passed == set()


def test_every_setting_is_listed_in_env_example() -> None:
    listed = set(read_env_file(ENV_EXAMPLE))
    assert setting_names() - listed == set()
    assert r2rec_names(listed) - setting_names() == set()


def test_env_example_lists_exactly_what_compose_uses(full_config: dict[str, Any]) -> None:
    listed = set(read_env_file(ENV_EXAMPLE))
    interpolated = interpolated_names(*COMPOSE_FILES)
    assert interpolated - listed == set(), "interpolated but not documented in .env.example"
    passed_through = {
        name
        for name, value in full_config["services"]["service"]["environment"].items()
        if value is None
    }
    assert listed - interpolated - passed_through == set(), "listed but unused"


def _settings_from(values: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


def test_env_example_values_are_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    example = read_env_file(ENV_EXAMPLE)
    values = {k: v for k, v in example.items() if k in setting_names() and v is not None}
    settings = _settings_from(values, monkeypatch)
    assert settings.graph_store == "neo4j"
    assert settings.llm_backend == "vllm"
    assert settings.neo4j_password.get_secret_value() == example["R2REC_NEO4J_PASSWORD"]
    assert {f"{PREFIX}{f}".upper() for f in settings.model_fields_set} == set(values)


@pytest.mark.parametrize("files", [(BASE,), (BASE, CPU)], ids=["gpu", "gpu+cpu"])
def test_service_container_environment_is_valid_settings(
    files: tuple[Path, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = compose_config(*files)["services"]["service"]["environment"]
    values = {k: v for k, v in environment.items() if v is not None}
    settings = _settings_from(values, monkeypatch)
    assert settings.graph_store == "neo4j"
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.write_key is not None
