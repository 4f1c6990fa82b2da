"""Rating evaluation: MAE and RMSE of a model beside the global/user/item-mean baselines.

    r2rec eval --task rating --dataset ml-100k --split test [--limit N] [--checkpoint DIR]
    results = evaluate_rating(dataset, ["valid"], limit=200, make_backend=factory)

Targets (`rating_targets`): the evaluation protocol's leave-one-out cases
(`evaluation.protocol.load_cases`), one per evaluated user: the case's target item and its
true rating from the dataset, with the case's history (the up to 10 items before it,
oldest first) and the user's ratings of them. Cases whose target or history has no rating
are left out. ``limit`` keeps the first N targets (users in sorted id order).

Baselines (`baseline_predictions`), fitted on the split's training log (`rated_log`:
everything before the split's targets, rated interactions only): ``global_mean``;
``user_mean`` and ``item_mean``, each falling back to the global mean for a user/item the
log does not rate.

Model: `reasoning.rater.predict_ratings` (reason up to ``<rate>``, then the expected
rating over "1".."5"; ``valid`` when the reasoning has the three analysis steps).

Metrics: ``MAE``, ``RMSE`` (of the expected rating), ``MAE argmax`` (of the most likely
choice), ``ValidRatio`` (share of valid predictions), ``cases``; every baseline gets
``MAE``, ``RMSE``, ``cases``. `markdown_table` renders the results (the CLI and the
rating model card print it).
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
from evaluation.protocol import Split, load_cases, training_log
from reasoning.backends.base import LLMBackend
from reasoning.prompt import ItemInfo
from reasoning.rater import RatingPrediction, predict_ratings
from reasoning.rating import RatedItem
from recdata.schema import Dataset

BASELINES = ("global_mean", "user_mean", "item_mean")


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


def baseline_predictions(
    train: pd.DataFrame, pairs: Sequence[tuple[str, str]]
) -> dict[str, np.ndarray]:
    """Predictions of each baseline for (user, item) pairs, fitted on ``train``'s ratings."""
    rated = train.loc[train["rating"].notna()]
    if rated.empty:
        raise UserInputError("the training log has no ratings to fit the baselines on")
    overall = float(rated["rating"].mean())
    user_mean = rated.groupby(rated["user_id"].astype(str))["rating"].mean().to_dict()
    item_mean = rated.groupby(rated["item_id"].astype(str))["rating"].mean().to_dict()
    return {
        "global_mean": np.full(len(pairs), overall),
        "user_mean": np.array([float(user_mean.get(u, overall)) for u, _ in pairs]),
        "item_mean": np.array([float(item_mean.get(i, overall)) for _, i in pairs]),
    }


def baseline_metrics(
    dataset: Dataset, split: Split, targets: Sequence[RatingTarget]
) -> dict[str, dict[str, float]]:
    """MAE/RMSE of every baseline on ``targets``, fitted on the split's training log."""
    predictions = baseline_predictions(
        rated_log(dataset, split), [(t.user_id, t.item_id) for t in targets]
    )
    truth = [t.rating for t in targets]
    return {name: error_metrics(predictions[name], truth) for name in BASELINES}


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


def _split_result(dataset: Dataset, split: Split, targets: list[RatingTarget], limit: int | None):
    if not targets:
        raise UserInputError(f"{dataset.name}/{split}: no rated evaluation targets")
    return {
        "dataset": dataset.name,
        "split": split,
        "limit": limit,
        "targets_sha256": targets_digest(targets),
        "baselines": baseline_metrics(dataset, split, targets),
    }


async def _score_model(
    make_backend: Callable[[], LLMBackend],
    targets: dict[str, list[RatingTarget]],
    results: dict[str, dict[str, Any]],
    model_name: str,
    max_tokens: int,
    batch_size: int,
) -> None:
    backend = make_backend()
    try:
        for split, split_targets in targets.items():
            started = time.perf_counter()
            predictions = await predict_ratings(backend, split_targets, max_tokens, batch_size)
            shown = list(zip(split_targets, predictions, strict=True))[:3]
            results[split].update(
                model=model_name,
                metrics=model_metrics(predictions, split_targets),
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


def evaluate_rating(
    dataset: Dataset,
    splits: Sequence[Split],
    limit: int | None = None,
    make_backend: Callable[[], LLMBackend] | None = None,
    model_name: str = "model",
    max_tokens: int = 192,
    batch_size: int = 8,
) -> dict[str, dict[str, Any]]:
    """Per split (JSON-ready): the baselines, and the model when ``make_backend`` is given
    (one backend for every split, closed at the end); ``examples`` shows three answers."""
    targets: dict[str, list[RatingTarget]] = {
        split: rating_targets(dataset, split, limit) for split in splits
    }
    results: dict[str, dict[str, Any]] = {
        split: _split_result(dataset, split, t, limit)  # type: ignore[arg-type]
        for split, t in targets.items()
    }
    if make_backend is not None:
        asyncio.run(
            _score_model(make_backend, targets, results, model_name, max_tokens, batch_size)
        )
    return results


def markdown_rows(result: dict[str, Any], split: str) -> list[str]:
    """Table rows of one split's result: the model (if scored), then the baselines."""
    prefix = f"| {split} "
    rows = []
    if "metrics" in result:
        m = result["metrics"]
        rows.append(
            f"{prefix}| {result.get('model', 'model')} | {int(m['cases'])} | "
            f"{m['MAE']:.4f} | {m['RMSE']:.4f} | {m['ValidRatio']:.4f} |"
        )
    for name, m in result["baselines"].items():
        rows.append(
            f"{prefix}| {name} | {int(m['cases'])} | {m['MAE']:.4f} | {m['RMSE']:.4f} | - |"
        )
    return rows


def markdown_table(results: dict[str, dict[str, Any]]) -> str:
    """The rating table over splits: model and baselines per split, then where from."""
    lines = ["| split | model | cases | MAE | RMSE | ValidRatio |", "|---|---|---:|---:|---:|---:|"]
    for split, result in results.items():
        lines += markdown_rows(result, split)
    lines.append("")
    lines += [
        f"{r['dataset']}, {split} split: protocol leave-one-out targets "
        f"(sha256 {r['targets_sha256'][:12]}); baselines fitted on the split's training log."
        for split, r in results.items()
    ]
    return "\n".join(lines)
