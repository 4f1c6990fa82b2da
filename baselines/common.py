"""Shared plumbing for the classical baselines: id <-> index maps, user sequences, scoring.

Every baseline works on dense integer indices. `Catalog` maps item ids (from the items
frame plus anything seen in the training log) and user ids (from the training log) to
indices; `user_sequences` orders each user's training interactions by (timestamp,
item_id), the protocol's order. `case_sequence` decides which history a case is scored
with: the user's whole training sequence merged with ``case.history`` (the train log of
an evaluated user holds exactly the interactions before the target, while
``case.history`` is capped at 10 items), so models see as much of the past as exists.

    catalog = Catalog.build(train, items)
    seqs = user_sequences(train, catalog)             # user index -> item index array
    seq = case_sequence(case, catalog, seqs)          # item indices, oldest first
    cand = catalog.candidate_indices(cases)           # (n_cases, n_candidates), -1 unknown
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from evaluation.ranker import Case, RankResult
from reasoning.collaborative import distinct_recent, fill_unknown

TRAIN_COLUMNS = ("user_id", "item_id", "timestamp")


def check_train_frame(train: pd.DataFrame, items: pd.DataFrame) -> None:
    """Raise ValueError naming the missing columns of a training log or items frame."""
    missing = [c for c in TRAIN_COLUMNS if c not in train.columns]
    if missing:
        raise ValueError(f"training log lacks required column(s) {missing}")
    if "item_id" not in items.columns:
        raise ValueError("items frame lacks required column 'item_id'")
    if len(train) == 0:
        raise ValueError("training log is empty: nothing to fit")


def check_cases(cases: Sequence[Case]) -> int:
    """Return the common candidate count of ``cases``; ValueError if they differ or are 0."""
    if not cases:
        return 0
    sizes = {len(c.candidates) for c in cases}
    if len(sizes) != 1:
        raise ValueError(f"cases must all have the same number of candidates, got {sorted(sizes)}")
    (size,) = sizes
    if size == 0:
        raise ValueError("cases have no candidates")
    return size


@dataclass(frozen=True)
class Catalog:
    """Dense indices for users (from the train log) and items (items frame + train log)."""

    item_ids: tuple[str, ...]
    user_ids: tuple[str, ...]
    item_index: dict[str, int]
    user_index: dict[str, int]

    @classmethod
    def build(cls, train: pd.DataFrame, items: pd.DataFrame) -> Catalog:
        check_train_frame(train, items)
        item_ids = tuple(
            dict.fromkeys(
                [*items["item_id"].astype(str).tolist(), *train["item_id"].astype(str).tolist()]
            )
        )
        user_ids = tuple(dict.fromkeys(train["user_id"].astype(str).tolist()))
        return cls(
            item_ids=item_ids,
            user_ids=user_ids,
            item_index={i: n for n, i in enumerate(item_ids)},
            user_index={u: n for n, u in enumerate(user_ids)},
        )

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    def items_to_indices(self, ids: Sequence[str]) -> np.ndarray:
        """Indices of the known ids among ``ids`` (unknown ones are dropped), order kept."""
        found = [self.item_index[i] for i in ids if i in self.item_index]
        return np.asarray(found, dtype=np.int64)

    def candidate_indices(self, cases: Sequence[Case]) -> np.ndarray:
        """(n_cases, n_candidates) item indices; -1 marks a candidate outside the catalog."""
        width = check_cases(cases)
        out = np.full((len(cases), width), -1, dtype=np.int64)
        for row, case in enumerate(cases):
            out[row] = [self.item_index.get(c, -1) for c in case.candidates]
        return out

    def interaction_indices(self, train: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        users = train["user_id"].astype(str).map(self.user_index).to_numpy(dtype=np.int64)
        items = train["item_id"].astype(str).map(self.item_index).to_numpy(dtype=np.int64)
        return users, items

    def binary_matrix(self, train: pd.DataFrame) -> sp.csr_matrix:
        """Binary users x items CSR matrix (repeat interactions count once)."""
        users, items = self.interaction_indices(train)
        data = np.ones(len(users), dtype=np.float32)
        mat = sp.csr_matrix((data, (users, items)), shape=(self.n_users, self.n_items))
        mat.data[:] = 1.0  # duplicates were summed on construction
        return mat


def user_sequences(train: pd.DataFrame, catalog: Catalog) -> list[np.ndarray]:
    """Per user index, item indices ordered by (timestamp, item_id) — oldest first."""
    frame = pd.DataFrame(
        {
            "user_id": train["user_id"].astype(str).to_numpy(),
            "item_id": train["item_id"].astype(str).to_numpy(),
            "timestamp": train["timestamp"].astype("int64").to_numpy(),
        }
    ).sort_values(["user_id", "timestamp", "item_id"], kind="mergesort")
    seqs: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * catalog.n_users
    if frame.empty:
        return seqs
    # one dictionary lookup for the whole log, then cut at the user boundaries (a map per
    # user group rebuilt the item index each time: quadratic, hours at 10M interactions)
    users = frame["user_id"].map(catalog.user_index).to_numpy(dtype=np.int64)
    items = frame["item_id"].map(catalog.item_index).to_numpy(dtype=np.int64)
    starts = np.concatenate(([0], np.flatnonzero(users[1:] != users[:-1]) + 1))
    for start, stop in zip(starts, [*starts[1:], len(users)], strict=True):
        seqs[users[start]] = items[start:stop]
    return seqs


def merge_history(past: np.ndarray, history: np.ndarray) -> np.ndarray:
    """``past`` followed by the part of ``history`` that it does not already end with.

    ``history`` is the case's recent items; when it is a suffix of ``past`` (the usual
    evaluation case) ``past`` is returned unchanged. When ``history`` runs beyond ``past``
    (e.g. a model fitted on the validation log scoring test cases), the longest overlap
    between the end of ``past`` and the start of ``history`` is found and the newer items
    appended.
    """
    if len(history) == 0:
        return past
    for k in range(min(len(past), len(history)), 0, -1):
        if np.array_equal(past[len(past) - k :], history[:k]):
            return np.concatenate([past, history[k:]])
    return np.concatenate([past, history])


def case_sequence(case: Case, catalog: Catalog, seqs: list[np.ndarray]) -> np.ndarray:
    """The item indices a case is scored with: the user's train sequence merged with history.

    Unknown users (not in the training log) get only ``case.history``; unknown item ids
    are dropped.
    """
    history = catalog.items_to_indices(case.history)
    user = catalog.user_index.get(case.user_id)
    if user is None:
        return history
    return merge_history(seqs[user], history)


def empty_result() -> RankResult:
    return RankResult.all_valid(np.zeros((0, 0)))


class NotFittedError(RuntimeError):
    """rank() was called before fit()."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name}: call fit(train, items) before rank(cases)")


class PositiveSet:
    """Fast membership test for (user, item) index pairs, used to reject sampled negatives."""

    def __init__(self, users: np.ndarray, items: np.ndarray, n_items: int) -> None:
        self._n_items = n_items
        self._keys = np.unique(users.astype(np.int64) * n_items + items.astype(np.int64))

    def contains(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users.astype(np.int64) * self._n_items + items.astype(np.int64)
        pos = np.searchsorted(self._keys, keys)
        pos = np.minimum(pos, len(self._keys) - 1)
        return self._keys[pos] == keys

    def sample_negatives(
        self, rng: np.random.Generator, users: np.ndarray, low: int = 0, rounds: int = 20
    ) -> np.ndarray:
        """One item index in [low, n_items) per entry of ``users``, avoiding their positives.

        Collisions are redrawn up to ``rounds`` times (a user who has interacted with
        almost every item may keep a positive; that is rare and harmless).
        """
        out = rng.integers(low, self._n_items, size=users.shape)
        for _ in range(rounds):
            clash = self.contains(users, out)
            if not clash.any():
                break
            out[clash] = rng.integers(low, self._n_items, size=int(clash.sum()))
        return out


class HistoryScorer(ABC):
    """Base of rankers that score candidates from the user's recent items (ItemKNN, graph).

    ``fit`` builds the catalog and per-user sequences and calls `_learn`; ``rank`` takes
    each case's merged sequence, keeps its last ``history_window`` distinct items (None =
    all) and asks `_score` for the known candidates; unknown candidates rank last.
    """

    name: str
    generative = False

    def __init__(self, history_window: int | None) -> None:
        if history_window is not None and history_window < 1:
            raise ValueError("history_window must be >= 1 or None")
        self.history_window = history_window
        self._catalog: Catalog | None = None
        self._seqs: list[np.ndarray] = []

    @abstractmethod
    def _learn(self, catalog: Catalog, train: pd.DataFrame) -> None:
        """Fit the model's matrices from the training log."""

    @abstractmethod
    def _score(self, history: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Scores of ``candidates`` (item indices) given distinct ``history`` indices (>= 1)."""

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            raise NotFittedError(self.name)
        return self._catalog

    def fit(self, train: pd.DataFrame, items: pd.DataFrame) -> None:
        catalog = Catalog.build(train, items)
        self._learn(catalog, train)
        self._seqs = user_sequences(train, catalog)
        self._catalog = catalog

    def rank(self, cases: Sequence[Case]) -> RankResult:
        if self._catalog is None:
            raise NotFittedError(self.name)
        if not cases:
            return empty_result()
        cand = self._catalog.candidate_indices(cases)
        scores = np.zeros(cand.shape)
        window = self.history_window
        for row, case in enumerate(cases):
            seq = case_sequence(case, self._catalog, self._seqs)
            hist = distinct_recent(seq, window)
            known = cand[row] >= 0
            if len(hist):
                scores[row, known] = self._score(hist, cand[row, known])
        return RankResult.all_valid(fill_unknown(scores, cand))
