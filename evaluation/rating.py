"""Rating evaluation: MAE and RMSE of a model beside the global/user/item-mean baselines.

    r2rec eval --task rating --dataset ml-100k --split test [--limit N] [--checkpoint DIR]
    results = evaluate_rating(dataset, ["valid"], limit=200, make_backend=factory)

Targets (`rating_targets`): the evaluation protocol's leave-one-out cases
(`evaluation.protocol.load_cases`), one per evaluated user: the case's target item and its
true rating from the dataset, with the case's history (the up to 10 items before it,
oldest first) and the user's ratings of them. Cases whose target or history has no rating
are left out. ``limit`` keeps the first N targets (users in sorted id order).

Baselines (`baseline_predictions`, models in `evaluation.rating_baselines`), fitted on the
split's training log (`rated_log`: everything before the split's targets, rated
interactions only): ``global_mean``; ``user_mean`` and ``item_mean`` (the global mean for
a user/item the log does not rate); ``bias`` (mu + b_u + b_i) and ``mf`` (biased matrix
factorisation), whose hyper-parameters `tune_baselines` chooses on the valid split's
targets (fitted on the valid log) before they are refitted on the split's own log. Each
baseline reports its fit time and a paired sign-flip p-value of its per-target absolute
errors against the best baseline's (``p_vs_best``; `evaluation.significance`).

Model: `reasoning.rater.predict_ratings` (reason up to ``<rate>``, then the expected
rating over "1".."5"; ``valid`` when the reasoning has the three analysis steps).

Metrics: ``MAE``, ``RMSE`` (of the expected rating), ``MAE argmax`` (of the most likely
choice), ``ValidRatio`` (share of valid predictions), ``cases``; every baseline gets
``MAE``, ``RMSE``, ``cases``, ``fit_seconds``, ``p_vs_best``; the model gets ``p_vs_best``
against the best baseline too. ``rows`` lists them all as ``model``/``MAE``/``RMSE``/``n``.
`markdown_table` renders the results (the CLI and the rating model card print it).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from common.errors import UserInputError
from evaluation.protocol import Split, dataset_fingerprint, load_cases, training_log
from evaluation.rating_baselines import (
    BASELINES,
    TunedBaselines,
    baseline_predictions,
    best_baseline,
    tune_on,
)
from evaluation.significance import paired_sign_flip
from reasoning.backends.base import LLMBackend
from reasoning.prompt import ItemInfo
from reasoning.rater import RatingPrediction, predict_ratings
from reasoning.rating import RatedItem
from recdata.schema import Dataset


def item_infos(dataset: Dataset) -> dict[str, ItemInfo]:
    """item_id -> ItemInfo (year and genres where the dataset has those columns)."""
    items = dataset.items
    blank = pd.Series([""] * len(items), index=items.index)
    years, genres = items.get("year", blank), items.get("genres", blank)
    return {
        str(i): ItemInfo(str(i), str(t), str(y), str(g))
        for i, t, y, g in zip(items["item_id"], items["title"], years, genres, strict=True)
    }


def rated_log(dataset: Dataset, split: str) -> pd.DataFrame:
    """The split's training log without unrated interactions; refuses unrated datasets."""
    log = training_log(dataset, split)  # type: ignore[arg-type]
    log = log.loc[log["rating"].notna()].reset_index(drop=True)
    if log.empty:
        raise UserInputError(f"{dataset.name}: no explicit ratings, the rating task needs them")
    return log


@dataclass(frozen=True)
class RatingTarget:
    """One evaluation target: the user's protocol case with ratings."""

    user_id: str
    item_id: str
    rating: float
    history: tuple[RatedItem, ...]
    target: ItemInfo


def rating_targets(dataset: Dataset, split: Split, limit: int | None = None) -> list[RatingTarget]:
    """The protocol's cases of ``split`` as rating targets (see the module docstring)."""
    if dataset.interactions["rating"].notna().sum() == 0:
        raise UserInputError(f"{dataset.name}: no explicit ratings, the rating task needs them")
    infos = item_infos(dataset)
    frame = dataset.sorted_interactions()
    per_user: dict[str, list[tuple[str, int, float]]] = {}
    for user, rows in frame.groupby("user_id", sort=False):
        per_user[str(user)] = list(
            zip(
                rows["item_id"].astype(str),
                rows["timestamp"].astype(int),
                rows["rating"].astype(float),
                strict=True,
            )
        )
    targets: list[RatingTarget] = []
    for case in load_cases(dataset, split):
        entries = per_user[case.user_id]
        pos = next(
            i
            for i in range(len(entries) - 1, -1, -1)
            if entries[i][:2] == (case.target, case.timestamp)
        )
        before = entries[pos - len(case.history) : pos]
        if tuple(e[0] for e in before) != case.history:
            raise ValueError(f"user {case.user_id}: case history does not match the dataset")
        ratings = [e[2] for e in [*before, entries[pos]]]
        if not all(math.isfinite(r) for r in ratings):
            continue
        targets.append(
            RatingTarget(
                case.user_id,
                case.target,
                entries[pos][2],
                tuple(RatedItem(infos[i], r) for i, _, r in before),
                infos[case.target],
            )
        )
        if limit is not None and len(targets) >= limit:
            break
    return targets


def targets_digest(targets: Sequence[RatingTarget]) -> str:
    """sha256 over (user, item, rating) of the targets: equal digests, same targets."""
    text = "".join(f"{t.user_id}\x1f{t.item_id}\x1f{t.rating:g}\n" for t in targets)
    return hashlib.sha256(text.encode()).hexdigest()


def error_metrics(
    predicted: Sequence[float] | np.ndarray, true: Sequence[float] | np.ndarray
) -> dict[str, float]:
    """MAE, RMSE and the number of cases."""
    p, t = np.asarray(predicted, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if p.shape != t.shape or p.ndim != 1:
        raise ValueError(f"predictions {p.shape} and truths {t.shape} must be equal 1-d shapes")
    if not len(p):
        return {"MAE": float("nan"), "RMSE": float("nan"), "cases": 0.0}
    err = p - t
    return {
        "MAE": float(np.mean(np.abs(err))),
        "RMSE": float(np.sqrt(np.mean(err**2))),
        "cases": float(len(p)),
    }


_TUNED: dict[str, TunedBaselines] = {}


def tune_baselines(dataset: Dataset) -> TunedBaselines:
    """Grid search of the bias and MF models: fitted on the valid split's log, scored on
    all its targets by MAE (cached per dataset and ratings in this process); without valid
    targets, the defaults."""
    log = rated_log(dataset, "valid")
    targets = rating_targets(dataset, "valid")
    key = hashlib.sha256(
        f"{dataset.name}\x1f{dataset_fingerprint(dataset)}\x1f{targets_digest(targets)}".encode()
        + pd.util.hash_pandas_object(log[["user_id", "item_id", "rating"]]).to_numpy().tobytes()
    ).hexdigest()
    if key in _TUNED:
        return _TUNED[key]
    pairs, truth = [(t.user_id, t.item_id) for t in targets], [t.rating for t in targets]
    _TUNED[key] = tune_on(log, pairs, truth)
    return _TUNED[key]


def baseline_metrics(
    dataset: Dataset, split: Split, targets: Sequence[RatingTarget], tuned: TunedBaselines
) -> tuple[dict[str, dict[str, Any]], np.ndarray]:
    """(MAE/RMSE/fit time/p against the best of every baseline on ``targets``, fitted on
    the split's training log; the best baseline's per-target predictions)."""
    predictions, seconds = baseline_predictions(
        rated_log(dataset, split), [(t.user_id, t.item_id) for t in targets], tuned
    )
    truth = np.array([t.rating for t in targets])
    metrics: dict[str, dict[str, Any]] = {
        name: {**error_metrics(predictions[name], truth), "fit_seconds": seconds[name]}
        for name in BASELINES
    }
    best = best_baseline(metrics)
    for name, m in metrics.items():
        m["p_vs_best"] = _p_against(predictions[name], predictions[best], truth)
    return metrics, predictions[best]


def _p_against(predicted: np.ndarray, best: np.ndarray, truth: np.ndarray) -> float | None:
    """Paired sign-flip p of the absolute errors against the best's (None: identical)."""
    a, b = np.abs(predicted - truth), np.abs(best - truth)
    return None if np.array_equal(a, b) else paired_sign_flip(a, b).p_value


def model_metrics(
    predictions: Sequence[RatingPrediction], targets: Sequence[RatingTarget]
) -> dict[str, float]:
    """MAE/RMSE of the expected rating, MAE of the argmax, ValidRatio, cases."""
    truth = [t.rating for t in targets]
    metrics = error_metrics([p.expected for p in predictions], truth)
    metrics["MAE argmax"] = error_metrics([p.argmax for p in predictions], truth)["MAE"]
    metrics["ValidRatio"] = (
        float(np.mean([p.valid for p in predictions])) if predictions else float("nan")
    )
    return metrics


def _split_result(
    dataset: Dataset,
    split: Split,
    targets: list[RatingTarget],
    limit: int | None,
    tuned: TunedBaselines,
) -> tuple[dict[str, Any], np.ndarray]:
    """(the split's JSON-ready baseline result, the best baseline's predictions)."""
    if not targets:
        raise UserInputError(f"{dataset.name}/{split}: no rated evaluation targets")
    metrics, best = baseline_metrics(dataset, split, targets, tuned)
    result = {
        "dataset": dataset.name,
        "split": split,
        "limit": limit,
        "targets_sha256": targets_digest(targets),
        "baselines": metrics,
        "best_baseline": best_baseline(metrics),
        "baseline_params": tuned.describe(),
    }
    return result, best


async def _score_model(
    make_backend: Callable[[], LLMBackend],
    targets: dict[str, list[RatingTarget]],
    results: dict[str, dict[str, Any]],
    best: dict[str, np.ndarray],
    names: tuple[str, int, int],
) -> None:
    model_name, max_tokens, batch_size = names
    backend = make_backend()
    try:
        for split, split_targets in targets.items():
            started = time.perf_counter()
            predictions = await predict_ratings(backend, split_targets, max_tokens, batch_size)
            shown = list(zip(split_targets, predictions, strict=True))[:3]
            metrics: dict[str, Any] = model_metrics(predictions, split_targets)
            truth = np.array([t.rating for t in split_targets])
            expected = np.array([p.expected for p in predictions])
            metrics["p_vs_best"] = _p_against(expected, best[split], truth)
            results[split].update(
                model=model_name,
                metrics=metrics,
                runtime_seconds=time.perf_counter() - started,
                examples=[
                    {
                        "user_id": t.user_id,
                        "item_id": t.item_id,
                        "rating": t.rating,
                        "expected": p.expected,
                        "reasoning": p.reasoning,
                    }
                    for t, p in shown
                ],
            )
    finally:
        await backend.aclose()


def result_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One split's rows (model first when scored): ``model``, ``MAE``, ``RMSE``, ``n``,
    ``p_vs_best``, ``seconds`` (fit, or the model's inference) and, where tuned, ``params``."""
    rows = []
    if "metrics" in result:
        m = result["metrics"]
        rows.append(
            {
                "model": result.get("model", "model"),
                "MAE": m["MAE"],
                "RMSE": m["RMSE"],
                "n": int(m["cases"]),
                "ValidRatio": m["ValidRatio"],
                "p_vs_best": m.get("p_vs_best"),
                "seconds": result.get("runtime_seconds"),
            }
        )
    params = result.get("baseline_params", {})
    for name, m in result["baselines"].items():
        row = {
            "model": name,
            "MAE": m["MAE"],
            "RMSE": m["RMSE"],
            "n": int(m["cases"]),
            "p_vs_best": m.get("p_vs_best"),
            "seconds": m.get("fit_seconds"),
        }
        if name in params:
            row["params"] = params[name]["params"]
        rows.append(row)
    return rows


def evaluate_rating(
    dataset: Dataset,
    splits: Sequence[Split],
    limit: int | None = None,
    make_backend: Callable[[], LLMBackend] | None = None,
    model_name: str = "model",
    max_tokens: int = 192,
    batch_size: int = 8,
) -> dict[str, dict[str, Any]]:
    """Per split (JSON-ready): the baselines (bias/MF tuned on valid first), and the model
    when ``make_backend`` is given (one backend for every split, closed at the end);
    ``examples`` shows three answers, ``rows`` every model's row."""
    targets: dict[str, list[RatingTarget]] = {}
    tuned = tune_baselines(dataset)
    results: dict[str, dict[str, Any]] = {}
    best: dict[str, np.ndarray] = {}
    for split in splits:
        targets[split] = rating_targets(dataset, split, limit)
        results[split], best[split] = _split_result(dataset, split, targets[split], limit, tuned)
    if make_backend is not None:
        names = (model_name, max_tokens, batch_size)
        asyncio.run(_score_model(make_backend, targets, results, best, names))
    for result in results.values():
        result["rows"] = result_rows(result)
    return results


def _cell(value: float | None, digits: str) -> str:
    return "-" if value is None else format(value, digits)


def markdown_rows(result: dict[str, Any], split: str) -> list[str]:
    """Table rows of one split's result: the model (if scored), then the baselines."""
    return [
        f"| {split} | {r['model']} | {r['n']} | {r['MAE']:.4f} | {r['RMSE']:.4f} | "
        f"{_cell(r.get('ValidRatio'), '.4f')} | {_cell(r['p_vs_best'], '.4f')} | "
        f"{_cell(r['seconds'], '.2f')} |"
        for r in result_rows(result)
    ]


def markdown_table(results: dict[str, dict[str, Any]]) -> str:
    """The rating table over splits: model and baselines per split, then where from."""
    lines = [
        "| split | model | cases | MAE | RMSE | ValidRatio | p vs best | seconds |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for split, result in results.items():
        lines += markdown_rows(result, split)
    lines.append("")
    for split, r in results.items():
        chosen = "; ".join(
            f"{name} {_params(r['baseline_params'][name]['params'])} "
            f"({r['baseline_params'][name]['chosen_on']})"
            for name in ("bias", "mf")
        )
        lines.append(
            f"{r['dataset']}, {split} split: protocol leave-one-out targets "
            f"(sha256 {r['targets_sha256'][:12]}); baselines fitted on the split's training "
            f"log; best baseline {r['best_baseline']}; hyper-parameters (chosen by MAE on): "
            f"{chosen}. "
            "p vs best: paired sign-flip test of per-target absolute errors; seconds: fit "
            "(baselines) or inference (model)."
        )
    return "\n".join(lines)


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in params.items())
