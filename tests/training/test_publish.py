"""Publishing: a run is promoted only if its validation HR@1 beats the published model's,
on the same validation cases; the folder is swapped in whole, and the service loads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.errors import UserInputError
from common.paths import published_dir, published_manifest
from service.runtime import resolve_model_path
from service.settings import Settings
from training.publish import current, publish
from training.run_folder import run_dir


def _fake_run(name: str, hr1: float, cases: str = "abc", tiny: Path | None = None) -> None:
    """A finished run folder: a model folder and protocol metrics with this HR@1."""
    folder = run_dir(name)
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "config.json").write_text(json.dumps({"run": name}))
    metrics = {"valid": {"metrics": {"HR@1": hr1}, "cases_sha256": cases}}
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_better_is_promoted_worse_or_equal_is_refused(r2rec_home: Path) -> None:
    _fake_run("a", 0.20)
    _fake_run("b", 0.25)
    _fake_run("c", 0.25)
    _fake_run("d", 0.10)
    first = publish("a")
    assert first.published and first.previous_run is None
    assert json.loads((published_dir() / "config.json").read_text()) == {"run": "a"}
    better = publish("b")
    assert better.published and better.previous_run == "a" and better.previous_hr1 == 0.20
    assert current()["run"] == "b"  # type: ignore[index]
    for name in ("c", "d"):  # equal and worse
        refused = publish(name)
        assert not refused.published and "does not beat" in refused.reason
    assert json.loads((published_dir() / "config.json").read_text()) == {"run": "b"}
    assert json.loads(published_manifest().read_text())["valid_hr1"] == 0.25
    forced = publish("d", force=True)
    assert forced.published and current()["run"] == "d"  # type: ignore[index]
    assert not list(published_dir().parent.glob(".published*"))  # no staging left behind


def test_scores_on_other_cases_are_not_compared(r2rec_home: Path) -> None:
    _fake_run("a", 0.20, cases="one")
    _fake_run("b", 0.90, cases="two")
    publish("a")
    refused = publish("b")
    assert not refused.published and "other validation cases" in refused.reason


def test_bad_runs_are_named(r2rec_home: Path) -> None:
    with pytest.raises(UserInputError, match="no merged model"):
        publish("missing")
    _fake_run("nometrics", 0.1)
    (run_dir("nometrics") / "metrics.json").write_text(json.dumps({"test": {}}))
    with pytest.raises(UserInputError, match="no validation metrics"):
        publish("nometrics")


def test_the_service_loads_the_published_model_by_default(r2rec_home: Path) -> None:
    _fake_run("a", 0.3)
    publish("a")
    assert resolve_model_path(Settings()) == published_dir().resolve()
