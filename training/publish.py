"""`r2rec model publish RUN`: promote a run's model only if it beats what would be served.

The published model is ``$R2REC_HOME/models/published/`` (a full model folder; the
service's `service.ranking.resolve_model_path` loads it by default) and its record
``$R2REC_HOME/models/published.json`` (run name, metrics, time). A run is promoted only if
its validation HR@1 is strictly higher than both

- the published model's, measured on the same validation cases (same case-file hash), and
- the classical ranker the service answers with when no model does (`SERVICE_RANKER`,
  the graph scorer), scored here on exactly the run's validation cases;

``force`` skips both comparisons and is written into the record. The folder is copied
beside the target and renamed into place, then the record is written.

    decision = publish("sft-smollm2")        # Decision(published=True, reason=...)
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from typing import Any

from common.errors import UserInputError
from common.files import read_json, replace_dir, staging_dir, write_json_atomic
from common.paths import published_dir, published_manifest
from training.run_folder import run_dir, run_metrics

SERVICE_RANKER = "graph-fallback"  # what the service ranks with when no LLM answers


@dataclass(frozen=True)
class Decision:
    published: bool
    reason: str
    run: str
    valid_hr1: float
    previous_run: str | None
    previous_hr1: float | None
    classical_hr1: float | None = None  # SERVICE_RANKER on the same validation cases


def classical_hr1(run: str, valid: dict[str, Any]) -> float:
    """Validation HR@1 of `SERVICE_RANKER` on the run's own validation cases (the same
    dataset, seed and first N cases; checked by case-file hash). Cached in the run folder."""
    from baselines import make_baseline
    from evaluation.protocol import ProtocolConfig
    from evaluation.runner import evaluate
    from recdata import load_dataset

    cache = run_dir(run) / "classical.json"
    saved = read_json(cache)
    if saved and saved.get("cases_sha256") == valid.get("cases_sha256"):
        return float(saved["HR@1"])
    if "dataset" not in valid:
        raise UserInputError(f"run {run!r}: validation metrics name no dataset; re-evaluate it")
    protocol = ProtocolConfig(seed=int(valid.get("seed", 0)))
    result = evaluate(
        make_baseline(SERVICE_RANKER),
        load_dataset(str(valid["dataset"])),
        "valid",
        protocol,
        limit=int(valid["metrics"]["cases"]),
    )
    if result.cases_sha256 != valid["cases_sha256"]:
        raise UserInputError(
            f"run {run!r} was scored on validation cases that no longer match its dataset; "
            "re-evaluate it"
        )
    hr1 = float(result.metrics["HR@1"])
    write_json_atomic(
        cache, {"model": SERVICE_RANKER, "HR@1": hr1, "cases_sha256": result.cases_sha256}
    )
    return hr1


def current() -> dict[str, Any] | None:
    """The published model's record, or None."""
    record = read_json(published_manifest())
    return dict(record) if record else None


def _valid(metrics: dict[str, Any], run: str) -> dict[str, Any]:
    if "valid" not in metrics:
        raise UserInputError(f"run {run!r} has no validation metrics: evaluate it on valid")
    if "HR@1" not in metrics["valid"].get("metrics", {}):
        raise UserInputError(f"run {run!r} is not a ranking run; only rankers are published")
    return dict(metrics["valid"])


def publish(run: str, force: bool = False) -> Decision:
    model = run_dir(run) / "model"
    if not (model / "config.json").is_file():
        raise UserInputError(f"run {run!r} has no merged model at {model}")
    valid = _valid(run_metrics(run), run)
    hr1 = float(valid["metrics"]["HR@1"])
    old = current()
    old_hr1 = float(old["valid_hr1"]) if old else None
    old_run = str(old["run"]) if old else None
    classical = classical_hr1(run, valid)
    if not force and not hr1 > classical:
        why = (
            f"validation HR@1 {hr1:.4f} does not beat the graph scorer's {classical:.4f}, "
            "what the service answers with when no model is published"
        )
        return Decision(False, why, run, hr1, old_run, old_hr1, classical)
    if old is not None and not force:
        if old.get("valid_cases_sha256") != valid["cases_sha256"]:
            return Decision(
                False,
                "the published model was scored on other validation cases; "
                "re-evaluate or use --force",
                run,
                hr1,
                old_run,
                old_hr1,
                classical,
            )
        if not hr1 > float(old["valid_hr1"]):
            why = f"validation HR@1 {hr1:.4f} does not beat the published {old_hr1:.4f} ({old_run})"
            return Decision(False, why, run, hr1, old_run, old_hr1, classical)
    with staging_dir(published_dir()) as staging:
        shutil.copytree(model, staging, dirs_exist_ok=True)
        replace_dir(staging, published_dir())
    record = {
        "run": run,
        "valid_hr1": hr1,
        "valid_cases_sha256": valid["cases_sha256"],
        "metrics": run_metrics(run),
        "classical": {"model": SERVICE_RANKER, "valid_hr1": classical},
        "forced": force,
        "published_unix": time.time(),
        "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "previous": old_run,
    }
    write_json_atomic(published_manifest(), record)
    why = (
        "forced: the gate was skipped"
        if force
        else (
            f"first published model; beats the graph scorer ({classical:.4f})"
            if old is None
            else f"beats {old_run} ({old_hr1:.4f}) and the graph scorer ({classical:.4f})"
        )
    )
    return Decision(True, why, run, hr1, old_run, old_hr1, classical)


def decision_json(decision: Decision) -> dict[str, Any]:
    return asdict(decision)
