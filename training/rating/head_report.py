"""The rating head's figures: its test table (classical baselines, the head alone, its
blend) and its training stages' figures (`stage_figures`, summed by `run_totals`).

The best classical model and the blend weight are chosen on valid; each test row gets a
paired sign-flip test of its absolute errors against that best classical model.

    table, chosen = blend_table(llm, classical, truth)  # dicts keyed "valid" and "test"
    print(markdown(table))
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from evaluation.rating import error_metrics
from evaluation.rating_baselines import best_baseline
from evaluation.significance import paired_sign_flip


def choose_blend(model: np.ndarray, classical: np.ndarray, truth: np.ndarray) -> float:
    """The weight w in [0, 1] (step 0.05) of ``(1 - w) * classical + w * model`` with the
    lowest MAE on these (validation) targets; the smallest such w on a tie."""
    grid = np.round(np.arange(0, 1.0001, 0.05), 2)
    maes = [float(np.mean(np.abs((1 - w) * classical + w * model - truth))) for w in grid]
    return float(grid[int(np.argmin(maes))])


def score_row(
    name: str, predicted: np.ndarray, truth: np.ndarray, best: np.ndarray
) -> dict[str, Any]:
    """MAE, RMSE, n and the paired p value against ``best`` (None for ``best`` itself)."""
    a, b = np.abs(predicted - truth), np.abs(best - truth)
    p = None if np.array_equal(a, b) else paired_sign_flip(a, b).p_value
    metrics = error_metrics(predicted, truth)
    return {
        "model": name,
        "MAE": metrics["MAE"],
        "RMSE": metrics["RMSE"],
        "n": len(truth),
        "p_vs_best": p,
    }


def blend_table(
    llm: dict[str, np.ndarray],
    classical: dict[str, dict[str, np.ndarray]],
    truth: dict[str, np.ndarray],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The test rows and what was chosen on valid (best classical model, blend weight)."""
    metrics = {n: error_metrics(p, truth["valid"]) for n, p in classical["valid"].items()}
    best = best_baseline({n: {"MAE": m["MAE"]} for n, m in metrics.items()})
    w = choose_blend(llm["valid"], classical["valid"][best], truth["valid"])
    reference, observed = classical["test"][best], truth["test"]
    table = [
        *(
            score_row(name, classical["test"][name], observed, reference)
            for name in ("item_mean", "bias", "mf")
            if name in classical["test"]
        ),
        score_row(
            "rating head alone (LLM, expectation over 1..5)", llm["test"], observed, reference
        ),
        score_row(
            f"blend: {1 - w:.2f} x {best} + {w:.2f} x rating head (w on valid)",
            (1 - w) * reference + w * llm["test"],
            observed,
            reference,
        ),
    ]
    chosen = {
        "best_classical_on_valid": best,
        "blend_weight": w,
        "valid_MAE": {
            "rating head": error_metrics(llm["valid"], truth["valid"])["MAE"],
            best: metrics[best]["MAE"],
        },
    }
    return table, chosen


def markdown(table: list[dict[str, Any]]) -> str:
    lines = ["| model | MAE | RMSE | n | p vs best classical |", "|---|---:|---:|---:|---:|"]
    for r in table:
        p = "" if r["p_vs_best"] is None else f"{r['p_vs_best']:.3g}"
        lines.append(f"| {r['model']} | {r['MAE']:.4f} | {r['RMSE']:.4f} | {r['n']} | {p} |")
    return "\n".join(lines)


def stage_figures(
    config: Any,
    steps: int,
    seen: int,
    started: float,
    tokens: int,
    losses: list[float],
    signal: list[dict[str, float]],
) -> dict[str, Any]:
    """One training run's own figures (GRPO: its reward and signal, first and last 25)."""
    stage: dict[str, Any] = {
        "objective": config.objective,
        "lr": config.lr,
        "steps": steps,
        "examples": seen,
        "seconds": round(time.perf_counter() - started, 1),
        "tokens_per_example": round(tokens / seen, 1) if seen else None,
        "first_loss": round(float(np.mean(losses[:25])), 4) if losses else None,
        "last_loss": round(float(np.mean(losses[-25:])), 4) if losses else None,
    }
    if signal:
        stage["group_size"] = config.group_size
        for key in ("reward", "groups_with_signal", "valid_format"):
            values = [s[key] for s in signal]
            stage[key] = round(float(np.mean(values)), 4)
            stage[f"{key}_first_25"] = round(float(np.mean(values[:25])), 4)
            stage[f"{key}_last_25"] = round(float(np.mean(values[-25:])), 4)
    return stage


def run_totals(before: dict[str, Any], stage: dict[str, Any]) -> dict[str, Any]:
    """The run's totals over every stage so far (an old summary without stages is one)."""
    stages = list(before.get("stages") or ([{"objective": "ce", **before}] if before else []))
    stages.append(stage)
    return {
        "objective": stage["objective"],
        "steps": sum(int(s["steps"]) for s in stages),
        "examples_seen": sum(int(s.get("examples", s.get("examples_seen", 0))) for s in stages),
        "seconds": round(sum(float(s["seconds"]) for s in stages), 1),
        "tokens_per_example": stage["tokens_per_example"],
        "stages": stages,
    }


def result_rows(summary: dict[str, Any], label: str, shipped: bool) -> list[dict[str, Any]]:
    """A head run's two model rows for ``results/<dataset>/rating.json`` (the head alone,
    its blend; ``shipped`` marks the blend, what /rate serves), beside the baselines'.
    ValidRatio is 1.0 by construction: the steps are written from facts, not generated.

    >>> s = {"test": [{"model": "mf", "MAE": 0.8, "RMSE": 1.0, "n": 9, "p_vs_best": None},
    ...  {"model": "rating head alone", "MAE": 0.83, "RMSE": 1.1, "n": 9, "p_vs_best": 0.2},
    ...  {"model": "blend: ...", "MAE": 0.78, "RMSE": 1.0, "n": 9, "p_vs_best": 0.01}],
    ...  "training": {"seconds": 60.0, "examples_seen": 40}, "blend_weight": 0.4,
    ...  "best_classical_on_valid": "mf"}
    >>> [(r["model"], r["shipped"]) for r in result_rows(s, "recone", True)]
    [('recone head alone', False), ('recone head + mf (w 0.40)', True)]
    """
    head, blend = summary["test"][-2], summary["test"][-1]
    partner = summary["best_classical_on_valid"]
    common = {
        "ValidRatio": 1.0,
        "train_seconds": summary["training"]["seconds"],
        "examples_seen": summary["training"]["examples_seen"],
    }
    return [
        {
            "model": name,
            **{k: row[k] for k in ("MAE", "RMSE", "n", "p_vs_best")},
            **common,
            "shipped": ship,
        }
        for name, row, ship in (
            (f"{label} head alone", head, False),
            (f"{label} head + {partner} (w {summary['blend_weight']:.2f})", blend, shipped),
        )
    ]
