"""ItemKNN: item-item cosine similarity on the binary user-item matrix.

    sim(i, j) = |U_i & U_j| / (sqrt(|U_i| * |U_j|) + shrinkage)

Each item keeps only its ``neighbours`` most similar items (None keeps all). A candidate's
score is the sum of its similarities to the user's history items (each counted once).
The history is the user's whole training sequence merged with ``case.history`` (see
`baselines.common.case_sequence`), cut to the ``history_window`` most recent items.

Defaults were chosen on the ML-100K *validation* split (NDCG@10): the 10 most recent
items beat the whole profile clearly (0.665 vs 0.609 NDCG@10, HR@1 0.399 vs 0.320 with
all neighbours) — in MovieLens the latest interactions predict the next one best — and
500 neighbours match "all" (0.662) while keeping the matrix sparse on large catalogs.

    ranker = ItemKNNRanker(ItemKNNConfig(neighbours=100)); ranker.fit(train, items)

The neighbour lists are built in blocks of items so that large catalogs never hold a
dense items x items matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from baselines.common import Catalog, HistoryScorer

_BLOCK = 1024  # items per block when building neighbour lists


@dataclass
class ItemKNNConfig:
    neighbours: int | None = 500  # similar items kept per item; None keeps every co-interacted item
    shrinkage: float = 10.0  # added to the cosine denominator; damps pairs with little support
    history_window: int | None = 10  # most recent items of the merged sequence; None = all


def cosine_neighbours(
    user_item: sp.csr_matrix, neighbours: int | None, shrinkage: float
) -> sp.csr_matrix:
    """items x items shrunk-cosine similarities, top ``neighbours`` per row, diagonal 0."""
    x = sp.csc_matrix(user_item, dtype=np.float64, copy=True)
    x.data[:] = 1.0
    n_items = x.shape[1]
    degree = np.asarray(x.sum(axis=0)).ravel()
    norm = np.sqrt(degree)
    blocks: list[sp.csr_matrix] = []
    for start in range(0, n_items, _BLOCK):
        stop = min(start + _BLOCK, n_items)
        co = (x[:, start:stop].T @ x).toarray()
        denom = norm[start:stop, None] * norm[None, :] + shrinkage
        sim = np.divide(co, denom, out=np.zeros_like(co), where=denom > 0)
        sim[np.arange(stop - start), np.arange(start, stop)] = 0.0
        if neighbours is not None and neighbours < n_items:
            cut = np.argpartition(-sim, neighbours - 1, axis=1)[:, neighbours:]
            np.put_along_axis(sim, cut, 0.0, axis=1)
        blocks.append(sp.csr_matrix(sim))
    return sp.vstack(blocks).tocsr() if blocks else sp.csr_matrix((0, 0))


class ItemKNNRanker(HistoryScorer):
    """Score = sum of (top-k, shrunk) cosine similarities to the user's history items."""

    name = "itemknn"

    def __init__(self, config: ItemKNNConfig | None = None) -> None:
        self.config = config or ItemKNNConfig()
        super().__init__(self.config.history_window)
        if self.config.neighbours is not None and self.config.neighbours < 1:
            raise ValueError("neighbours must be >= 1 or None")
        if self.config.shrinkage < 0:
            raise ValueError("shrinkage must be >= 0")
        self._sim = sp.csr_matrix((0, 0))

    def _learn(self, catalog: Catalog, train: pd.DataFrame) -> None:
        self._sim = cosine_neighbours(
            catalog.binary_matrix(train), self.config.neighbours, self.config.shrinkage
        )

    @property
    def similarity(self) -> sp.csr_matrix:
        """The fitted items x items neighbour similarities (catalog indices)."""
        return self._sim

    def _score(self, history: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        return np.asarray(self._sim[history][:, candidates].sum(axis=0)).ravel()
