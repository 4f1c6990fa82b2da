"""Seeded synthetic interaction graphs with a realistic shape, for benchmarks at size.

Item popularity is Zipf-like (item of rank r drawn with probability proportional to
``(r + 10) ** -exponent``), user activity lognormal (a few very heavy users, a long tail
of light ones), timestamps uniform over three years. The same ``(n, seed)`` gives the same
graph. Columns are integer codes (users ``u<k>``, items ``i<k>`` by code), so a 10M-edge
graph costs ~0.3 GB to make and never holds 10M Python strings:

    graph = synthetic_graph(1_000_000, seed=0)
    index = graph.index()                 # the embedded store's GraphIndex over it
    inter, items = graph.frames(0, 5000)  # rows [0, 5000) as canonical frames (Bolt loads)

Run ``r2rec bench graph --synthetic 100000,1000000`` to time both stores on such graphs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from graph_store.index import GraphCaps, GraphIndex, bare_item

START_TS = 1_500_000_000
SPAN_S = 3 * 365 * 86_400


@dataclass(frozen=True)
class SyntheticGraph:
    """Parallel edge columns (user code, item code, ts) over ``n_users`` x ``n_items``."""

    n_users: int
    n_items: int
    user: np.ndarray
    item: np.ndarray
    ts: np.ndarray

    def user_id(self, code: int) -> str:
        return f"u{code}"

    def index(self, caps: GraphCaps | None = None) -> GraphIndex:
        """The embedded store's index over the whole graph (no ratings, bare items)."""
        return GraphIndex.build(
            [self.user_id(u) for u in range(self.n_users)],
            [bare_item(f"i{i}") for i in range(self.n_items)],
            self.user,
            self.item,
            self.ts,
            np.full(len(self.ts), np.nan),
            caps or GraphCaps(),
        )

    def frames(self, start: int, stop: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Edges ``[start, stop)`` as canonical interactions, with the items they touch."""
        user, item = self.user[start:stop], self.item[start:stop]
        inter = pd.DataFrame(
            {
                "user_id": np.char.add("u", user.astype(str)).astype(object),
                "item_id": np.char.add("i", item.astype(str)).astype(object),
                "timestamp": self.ts[start:stop],
            }
        )
        codes = np.unique(item)
        ids = np.char.add("i", codes.astype(str)).astype(object)
        items = pd.DataFrame({"item_id": ids, "title": np.char.add("Item ", codes.astype(str))})
        return inter, items


def synthetic_graph(
    n: int, seed: int = 0, edges_per_user: int = 100, edges_per_item: int = 200
) -> SyntheticGraph:
    """``n`` interactions over ``n / edges_per_user`` users and ``n / edges_per_item`` items."""
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    rng = np.random.default_rng(seed)
    n_users = max(n // edges_per_user, 2)
    n_items = max(n // edges_per_item, 2)
    activity = rng.lognormal(mean=0.0, sigma=1.2, size=n_users)
    counts = 1 + np.floor(activity / activity.sum() * (n - n_users)).astype(np.int64)
    extra = rng.choice(n_users, n - int(counts.sum()), replace=True)
    counts += np.bincount(extra, minlength=n_users)  # every user active, exactly n edges
    user = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    weights = (np.arange(n_items, dtype=np.float64) + 10.0) ** -1.0
    cdf = np.cumsum(weights / weights.sum())
    item = np.minimum(np.searchsorted(cdf, rng.random(n)), n_items - 1).astype(np.int64)
    item = rng.permutation(n_items)[item]  # popular items get no telling ids
    ts = START_TS + rng.integers(0, SPAN_S, n, dtype=np.int64)
    order = rng.permutation(n)  # interleave users, as a live log would
    return SyntheticGraph(n_users, n_items, user[order], item[order], ts[order])
