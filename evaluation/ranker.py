"""The one interface every model is evaluated through: classical baselines and LLM rankers.

A ranker is fitted once on a training log (the interactions that precede each user's
target) and then scores evaluation cases. Each case carries exactly 20 candidates; the
ranker returns one score per candidate (higher = better) and, for generative rankers,
whether its raw output was valid. The protocol ranks targets pessimistically on ties, so
a ranker that returns constant scores gets the worst rank, never a lucky one.

    ranker = make_baseline("popularity")
    ranker.fit(train_log, dataset.items)
    result = ranker.rank(cases)          # RankResult(scores=(n_cases, 20), valid=(n_cases,))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Case:
    """One evaluation case: a user's recent history, the held-out target and 20 candidates.

    ``history`` is oldest-first (up to 10 item ids before the target). ``candidates`` holds
    the target plus 19 items the user never interacted with, in shuffled order.
    """

    user_id: str
    target: str
    history: tuple[str, ...]
    candidates: tuple[str, ...]
    timestamp: int = 0  # the target interaction's timestamp

    @property
    def target_index(self) -> int:
        return self.candidates.index(self.target)

    def to_json(self) -> dict[str, object]:
        return {
            "user_id": self.user_id,
            "target": self.target,
            "history": list(self.history),
            "candidates": list(self.candidates),
            "timestamp": self.timestamp,
        }

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Case:
        return cls(
            user_id=str(obj["user_id"]),
            target=str(obj["target"]),
            history=tuple(str(x) for x in obj["history"]),  # type: ignore[attr-defined]
            candidates=tuple(str(x) for x in obj["candidates"]),  # type: ignore[attr-defined]
            timestamp=int(obj.get("timestamp", 0)),  # type: ignore[call-overload]
        )


@dataclass
class RankResult:
    """Scores for a batch of cases. ``scores[i, j]`` scores ``cases[i].candidates[j]``.

    ``valid[i]`` is False when a generative ranker's raw output for case i could not be
    parsed into a ranking (its scores are then a documented fallback); classical rankers
    are always valid. ``extras`` carries per-case diagnostics (raw text, thoughts, ...).
    """

    scores: np.ndarray
    valid: np.ndarray
    extras: list[dict[str, object]] = field(default_factory=list)
    shares: dict[str, float] = field(default_factory=dict)  # reported beside the metrics

    @classmethod
    def all_valid(cls, scores: np.ndarray) -> RankResult:
        return cls(scores=np.asarray(scores, dtype=np.float64), valid=np.ones(len(scores), bool))


@runtime_checkable
class Ranker(Protocol):
    """What the evaluator needs from a model."""

    name: str
    generative: bool  # True for LLM rankers: adds ValidRatio and HR@1-among-valid columns

    def fit(self, train: pd.DataFrame, items: pd.DataFrame) -> None:
        """Learn from ``train`` (canonical interaction columns) and item metadata.

        ``train`` holds only interactions strictly before each user's evaluation target,
        so nothing the ranker sees leaks the answer.
        """
        ...

    def rank(self, cases: list[Case]) -> RankResult:
        """Score every candidate of every case."""
        ...
