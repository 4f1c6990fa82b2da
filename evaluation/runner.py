"""Score a ranker on the protocol's case files and report the metrics table.

    result = evaluate(make_baseline("sasrec"), load_dataset("ml-100k"), "test")
    print(markdown_table([result]))

A ranker that offers ``tune(train_log, cases, items)`` (SASRec does) is first tuned on the
validation split (validation cases, trained on what precedes the validation targets) and
then fitted on the split being scored, so test targets never guide a choice.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.explanations import SUMMARY_COLUMNS, ExplanationCheck, summarise_checks
from evaluation.metrics import GENERATIVE_COLUMNS, METRIC_COLUMNS, summarise, target_ranks
from evaluation.protocol import ProtocolConfig, Split, load_cases, training_log
from evaluation.ranker import Case, Ranker
from recdata.schema import Dataset


@dataclass
class EvalResult:
    """One model on one split of one dataset."""

    model: str
    dataset: str
    split: str
    seed: int
    metrics: dict[str, float]
    generative: bool
    tune_seconds: float
    fit_seconds: float
    rank_seconds: float
    cases_sha256: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def runtime_seconds(self) -> float:
        return self.tune_seconds + self.fit_seconds + self.rank_seconds


def cases_digest(cases: Sequence[Case]) -> str:
    text = "".join(json.dumps(c.to_json(), separators=(",", ":")) + "\n" for c in cases)
    return hashlib.sha256(text.encode()).hexdigest()


def _describe(ranker: Ranker) -> dict[str, Any]:
    config = getattr(ranker, "config", None)
    if config is None:
        return {}
    try:
        return dict(asdict(config))
    except TypeError:
        return dict(vars(config)) if hasattr(config, "__dict__") else {"config": str(config)}


def evaluate(
    ranker: Ranker,
    dataset: Dataset,
    split: Split = "test",
    protocol: ProtocolConfig | None = None,
    cases_root: Path | None = None,
    limit: int | None = None,
) -> EvalResult:
    """Tune (if the ranker can), fit, rank and score. ``limit`` scores only the first N cases
    (for quick looks; full runs leave it unset)."""
    protocol = protocol or ProtocolConfig()
    cases = load_cases(dataset, split, protocol, cases_root)[:limit]
    tune_seconds = 0.0
    tune = getattr(ranker, "tune", None)
    if callable(tune):
        started = time.perf_counter()
        valid_cases = load_cases(dataset, "valid", protocol, cases_root)
        tune(training_log(dataset, "valid", protocol.min_interactions), valid_cases, dataset.items)
        tune_seconds = time.perf_counter() - started
    started = time.perf_counter()
    ranker.fit(training_log(dataset, split, protocol.min_interactions), dataset.items)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    result = ranker.rank(cases)
    rank_seconds = time.perf_counter() - started
    if result.scores.shape != (len(cases), protocol.n_negatives + 1):
        raise ValueError(f"{ranker.name}: scores shape {result.scores.shape} does not match cases")
    ranks = target_ranks(result.scores, np.array([c.target_index for c in cases]))
    metrics = summarise(ranks, result.valid if ranker.generative else None)
    checks = [e["explanation"] for e in result.extras if "explanation" in e]
    if checks:
        metrics.update(summarise_checks([ExplanationCheck(**c) for c in checks]))  # type: ignore[arg-type]
    metrics.update(result.shares)
    return EvalResult(
        model=ranker.name,
        dataset=dataset.name,
        split=split,
        seed=protocol.seed,
        metrics=metrics,
        generative=ranker.generative,
        tune_seconds=tune_seconds,
        fit_seconds=fit_seconds,
        rank_seconds=rank_seconds,
        cases_sha256=cases_digest(cases),
        config=_describe(ranker),
    )


def markdown_table(results: Sequence[EvalResult]) -> str:
    """One row per result: every protocol metric, the generative columns, runtime."""
    generative = any(r.generative for r in results)
    explained = any(SUMMARY_COLUMNS[0] in r.metrics for r in results)
    columns = [
        *METRIC_COLUMNS,
        *(GENERATIVE_COLUMNS if generative else ()),
        *(SUMMARY_COLUMNS if explained else ()),
        "runtime (s)",
    ]
    lines = [
        "| model | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for r in results:
        cells = [f"{r.metrics[c]:.4f}" if c in r.metrics else "-" for c in columns[:-1]]
        lines.append(f"| {r.model} | " + " | ".join(cells) + f" | {r.runtime_seconds:.1f} |")
    first = results[0] if results else None
    if first is not None:
        lines.append("")
        lines.append(
            f"{first.dataset}, {first.split} split, seed {first.seed}, "
            f"{int(first.metrics['cases'])} cases (sha256 {first.cases_sha256[:12]})"
        )
    return "\n".join(lines)


def write_results(results: Sequence[EvalResult], path: Path) -> None:
    """Write the results as JSON (and the table as Markdown beside it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = [{**asdict(r), "runtime_seconds": r.runtime_seconds} for r in results]
    path.write_text(json.dumps(payload, indent=2) + "\n")
    path.with_suffix(".md").write_text(markdown_table(results) + "\n")
