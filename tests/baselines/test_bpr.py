"""BPR-MF: learns group structure, is seeded, handles unknown users."""

from __future__ import annotations

import numpy as np
import pandas as pd

from baselines.bpr import BPRConfig, BPRRanker
from evaluation.ranker import Case
from tests.baselines.synthetic import items_frame

FAST = BPRConfig(dim=16, epochs=25, lr=0.05, batch_size=256, seed=0)


def _two_groups() -> pd.DataFrame:
    """Users a* watch items 0-9, users b* items 10-19; item 0 is held out for a0."""
    rows = []
    for u in range(30):
        for i in range(10):
            if (u, i) != (0, 0):
                rows.append((f"a{u}", str(i), i))
            rows.append((f"b{u}", str(10 + i), i))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def _cases() -> list[Case]:
    cands = ("12", "0", "15", "19")
    return [
        Case("a0", "0", ("7", "8", "9"), cands),
        Case("stranger", "0", ("3", "4"), cands),  # unknown user: mean of history items
    ]


def test_bpr_prefers_the_users_group_for_known_and_unknown_users() -> None:
    ranker = BPRRanker(FAST)
    ranker.fit(_two_groups(), items_frame(25))
    scores = ranker.rank(_cases()).scores
    assert scores.shape == (2, 4)
    assert (scores.argmax(axis=1) == 1).all()
    assert ranker.epoch_losses[-1] < ranker.epoch_losses[0]


def test_bpr_cold_user_without_history_falls_back_to_popularity() -> None:
    extra = pd.DataFrame({"user_id": ["z1", "z2"], "item_id": ["15", "15"], "timestamp": [1, 1]})
    train = pd.concat([_two_groups(), extra])
    ranker = BPRRanker(FAST)
    ranker.fit(train, items_frame(25))
    scores = ranker.rank([Case("cold", "15", (), ("20", "15", "3"))]).scores[0]
    assert scores.argmax() == 1 and scores[0] == 0.0


def test_bpr_is_reproducible_under_a_seed() -> None:
    runs = []
    for seed in (0, 0, 1):
        ranker = BPRRanker(BPRConfig(dim=8, epochs=3, seed=seed))
        ranker.fit(_two_groups(), items_frame(25))
        runs.append(ranker.rank(_cases()).scores)
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])
