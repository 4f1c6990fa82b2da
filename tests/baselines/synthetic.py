"""Tiny synthetic logs whose right answers are known, shared by the baseline tests.

`cyclic_log`: items 0..n_items-1 on a ring; each user watches ``length`` consecutive
items from a random start, one per timestamp. The next item after a window is the one
that follows it on the ring, and items far round the ring never co-occur with it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.ranker import Case


def items_frame(n_items: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": [str(i) for i in range(n_items)],
            "title": [f"Item {i}" for i in range(n_items)],
        }
    )


def cyclic_log(n_users: int, n_items: int = 60, length: int = 9, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        start = int(rng.integers(n_items))
        for t in range(length):
            rows.append((f"u{u}", str((start + t) % n_items), 1000 + t, 4.0))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])


def ring_case(
    user_id: str, start: int, length: int = 8, n_items: int = 60, n_candidates: int = 20
) -> Case:
    """History = ``length`` ring items from ``start``; target = the next one; negatives are
    ring items at distance >= 10 from every history item (they never co-occur with it)."""
    history = tuple(str((start + t) % n_items) for t in range(length))
    target = str((start + length) % n_items)
    far = [str((start + length + 9 + k) % n_items) for k in range(n_candidates - 1)]
    rng = np.random.default_rng(start)
    candidates = [target, *far]
    order = rng.permutation(len(candidates))
    return Case(user_id, target, history, tuple(candidates[i] for i in order))


def target_first_rate(scores: np.ndarray, cases: list[Case]) -> float:
    """Share of cases whose target scores strictly above every other candidate."""
    hits = 0
    for row, case in zip(scores, cases, strict=True):
        t = case.target_index
        hits += int(all(row[t] > row[j] for j in range(len(row)) if j != t))
    return hits / len(cases)
