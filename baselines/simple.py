"""The two reference floors: seeded Random scores and train-log Popularity.

    ranker = RandomRanker(seed=0); ranker.fit(train, items); ranker.rank(cases)
    ranker = PopularityRanker();   ranker.fit(train, items); ranker.rank(cases)

Random draws uniform scores from a generator re-seeded on every `rank` call, so the same
cases always get the same scores. Popularity scores a candidate by how many interactions
it has in the training log (items never interacted with score 0; ids outside the catalog
score below everything).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from baselines.common import (
    Catalog,
    NotFittedError,
    check_cases,
    check_train_frame,
    empty_result,
)
from evaluation.ranker import Case, RankResult
from reasoning.collaborative import fill_unknown


@dataclass
class RandomConfig:
    seed: int = 0  # seeds the generator that draws the uniform scores


class RandomRanker:
    """Uniform random scores; the chance floor (expected HR@1 = 1/20)."""

    name = "random"
    generative = False

    def __init__(self, config: RandomConfig | None = None) -> None:
        self.config = config or RandomConfig()
        self._fitted = False

    def fit(self, train: pd.DataFrame, items: pd.DataFrame) -> None:
        check_train_frame(train, items)
        self._fitted = True

    def rank(self, cases: Sequence[Case]) -> RankResult:
        if not self._fitted:
            raise NotFittedError(self.name)
        width = check_cases(cases)
        if width == 0:
            return empty_result()
        rng = np.random.default_rng(self.config.seed)
        return RankResult.all_valid(rng.random((len(cases), width)))


@dataclass
class PopularityConfig:
    pass


class PopularityRanker:
    """Score = number of training interactions with the candidate."""

    name = "popularity"
    generative = False

    def __init__(self, config: PopularityConfig | None = None) -> None:
        self.config = config or PopularityConfig()
        self._catalog: Catalog | None = None
        self._counts = np.zeros(0)

    def fit(self, train: pd.DataFrame, items: pd.DataFrame) -> None:
        catalog = Catalog.build(train, items)
        _, item_idx = catalog.interaction_indices(train)
        self._counts = np.bincount(item_idx, minlength=catalog.n_items).astype(np.float64)
        self._catalog = catalog

    @property
    def counts(self) -> dict[str, int]:
        """item_id -> interaction count in the fitted training log."""
        if self._catalog is None:
            raise NotFittedError(self.name)
        return {i: int(c) for i, c in zip(self._catalog.item_ids, self._counts, strict=True)}

    def rank(self, cases: Sequence[Case]) -> RankResult:
        if self._catalog is None:
            raise NotFittedError(self.name)
        if not cases:
            return empty_result()
        cand = self._catalog.candidate_indices(cases)
        scores = np.where(cand >= 0, self._counts[np.maximum(cand, 0)], 0.0)
        return RankResult.all_valid(fill_unknown(scores, cand))
