"""Settings come from R2REC_* variables, and the README documents exactly those."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_environment_variables_configure_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("R2REC_GRAPH_STORE", "neo4j")
    monkeypatch.setenv("R2REC_CACHE_TTL_S", "42")
    monkeypatch.setenv("R2REC_API_KEY", "k")
    settings = Settings()
    assert settings.graph_store == "neo4j" and settings.cache_ttl_s == 42
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "k"


def test_bad_values_are_rejected_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("R2REC_GRAPH_STORE", "sqlite")
    with pytest.raises(ValidationError, match="graph_store"):
        Settings()


def test_readme_documents_every_setting_and_nothing_else() -> None:
    documented = set(re.findall(r"^\| `R2REC_([A-Z0-9_]+)` \|", README.read_text(), re.M))
    assert documented == {name.upper() for name in Settings.model_fields}
