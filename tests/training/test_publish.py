"""Publishing: a run is promoted only if its validation HR@1 beats the published model's
and the graph scorer's (what the service serves without a model), on the same validation
cases; the folder is swapped in whole, and the service loads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from baselines import make_baseline
from common.errors import UserInputError
from common.paths import published_dir, published_manifest
from evaluation.protocol import load_cases
from evaluation.runner import cases_digest, evaluate
from recdata import load_dataset
from service.ranking import resolve_model_path
from service.settings import Settings
from training.publish import current, publish
from training.run_folder import run_dir

N_CASES = 40


def _cases_sha(n: int = N_CASES) -> str:
    return cases_digest(load_cases(load_dataset("ml-100k"), "valid")[:n])


def _fake_run(name: str, hr1: float, n: int = N_CASES, cases: str | None = None) -> None:
    """A finished run folder: a model folder and protocol metrics with this HR@1 on the
    first ``n`` ML-100K validation cases."""
    folder = run_dir(name)
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "config.json").write_text(json.dumps({"run": name}))
    valid = {
        "dataset": "ml-100k",
        "seed": 0,
        "metrics": {"HR@1": hr1, "cases": float(n)},
        "cases_sha256": cases or _cases_sha(n),
    }
    (folder / "metrics.json").write_text(json.dumps({"valid": valid}))


def _graph_hr1(n: int = N_CASES) -> float:
    result = evaluate(make_baseline("graph-fallback"), load_dataset("ml-100k"), "valid", limit=n)
    return float(result.metrics["HR@1"])


def test_better_is_promoted_worse_or_equal_is_refused(r2rec_home: Path) -> None:
    _fake_run("a", 0.90)
    _fake_run("b", 0.95)
    _fake_run("c", 0.95)
    _fake_run("d", 0.91)
    first = publish("a")
    assert first.published and first.previous_run is None
    assert json.loads((published_dir() / "config.json").read_text()) == {"run": "a"}
    better = publish("b")
    assert better.published and better.previous_run == "a" and better.previous_hr1 == 0.90
    assert current()["run"] == "b"  # type: ignore[index]
    for name in ("c", "d"):  # equal and worse
        refused = publish(name)
        assert not refused.published and "does not beat" in refused.reason
    assert json.loads((published_dir() / "config.json").read_text()) == {"run": "b"}
    assert json.loads(published_manifest().read_text())["valid_hr1"] == 0.95
    forced = publish("d", force=True)
    assert forced.published and current()["run"] == "d"  # type: ignore[index]
    assert current()["forced"] is True and "forced" in forced.reason  # type: ignore[index]
    assert not list(published_dir().parent.glob(".published*"))  # no staging left behind


def test_scores_on_other_cases_are_not_compared(r2rec_home: Path) -> None:
    _fake_run("a", 0.90, n=N_CASES)
    _fake_run("b", 0.95, n=N_CASES + 1)
    publish("a")
    refused = publish("b")
    assert not refused.published and "other validation cases" in refused.reason
    _fake_run("stale", 0.95, cases="not the dataset's cases")
    with pytest.raises(UserInputError, match="no longer match"):
        publish("stale")


def test_a_run_that_loses_to_the_graph_scorer_is_never_published_first(r2rec_home: Path) -> None:
    graph = _graph_hr1()
    assert 0.1 < graph < 0.9  # a real yardstick on these cases
    _fake_run("weak", round(graph - 0.05, 4))
    _fake_run("tie", graph)
    for name in ("weak", "tie"):
        refused = publish(name)
        assert not refused.published and "graph scorer" in refused.reason
        assert refused.classical_hr1 == graph
    assert current() is None and not published_dir().exists()
    _fake_run("strong", round(graph + 0.05, 4))
    decision = publish("strong")
    assert decision.published and "graph scorer" in decision.reason
    assert current()["classical"] == {"model": "graph-fallback", "valid_hr1": graph}  # type: ignore[index]
    assert current()["forced"] is False  # type: ignore[index]


def test_bad_runs_are_named(r2rec_home: Path) -> None:
    with pytest.raises(UserInputError, match="no merged model"):
        publish("missing")
    _fake_run("nometrics", 0.9)
    (run_dir("nometrics") / "metrics.json").write_text(json.dumps({"test": {}}))
    with pytest.raises(UserInputError, match="no validation metrics"):
        publish("nometrics")


def test_the_service_loads_the_published_model_by_default(r2rec_home: Path) -> None:
    _fake_run("a", 0.9)
    publish("a")
    assert resolve_model_path(Settings()) == published_dir().resolve()
