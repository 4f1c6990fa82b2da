"""Ranking metrics over the protocol's 20-candidate cases.

The target's rank is pessimistic: it counts every other candidate whose score is greater
than *or equal to* the target's, so ties never flatter a model (constant scores rank the
target last). NaN scores count as the lowest possible score.

    >>> ranks = target_ranks(np.array([[0.9, 0.1, 0.5]]), np.array([2]))   # -> [1]
    >>> summarise(ranks, valid=np.array([True]))["HR@5"]
    1.0
"""

from __future__ import annotations

import math

import numpy as np

CUTOFFS = (1, 5, 10)
METRIC_COLUMNS = ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "HR@1 stderr")
GENERATIVE_COLUMNS = ("ValidRatio", "HR@1 valid")


def target_ranks(scores: np.ndarray, target_index: np.ndarray) -> np.ndarray:
    """0-based rank of each case's target, ties broken against the target."""
    s = np.where(np.isnan(scores), -np.inf, np.asarray(scores, dtype=np.float64))
    rows = np.arange(len(s))
    target = s[rows, target_index]
    return (s >= target[:, None]).sum(axis=1) - 1


def hit_ratio(ranks: np.ndarray, k: int) -> float:
    return float(np.mean(ranks < k)) if len(ranks) else 0.0


def ndcg(ranks: np.ndarray, k: int) -> float:
    """With one relevant item, NDCG@k = 1 / log2(rank + 2) when rank < k, else 0."""
    if not len(ranks):
        return 0.0
    gains = np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)
    return float(np.mean(gains))


def hr1_stderr(ranks: np.ndarray) -> float:
    """Standard error of HR@1 as a proportion: sqrt(p (1 - p) / n)."""
    n = len(ranks)
    if n == 0:
        return 0.0
    p = hit_ratio(ranks, 1)
    return math.sqrt(p * (1.0 - p) / n)


def summarise(ranks: np.ndarray, valid: np.ndarray | None = None) -> dict[str, float]:
    """All protocol metrics for one model on one split. ``valid`` adds the generative columns:
    ValidRatio (share of parseable outputs) and HR@1 among valid outputs."""
    out = {
        "cases": float(len(ranks)),
        "HR@1": hit_ratio(ranks, 1),
        "HR@5": hit_ratio(ranks, 5),
        "HR@10": hit_ratio(ranks, 10),
        "NDCG@5": ndcg(ranks, 5),
        "NDCG@10": ndcg(ranks, 10),
        "HR@1 stderr": hr1_stderr(ranks),
    }
    if valid is not None:
        v = np.asarray(valid, dtype=bool)
        out["ValidRatio"] = float(v.mean()) if len(v) else 0.0
        out["HR@1 valid"] = hit_ratio(ranks[v], 1) if v.any() else 0.0
    return out
