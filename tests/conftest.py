"""Suite-wide fixtures: every test gets its own R2REC_HOME so nothing leaks between tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def r2rec_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "r2rec-home"
    monkeypatch.setenv("R2REC_HOME", str(home))
    return home
