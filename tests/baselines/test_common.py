"""Shared helpers: catalog indices, sequence order, history merging, unknown candidates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from baselines.common import (
    Catalog,
    PositiveSet,
    case_sequence,
    check_cases,
    merge_history,
    user_sequences,
)
from evaluation.ranker import Case
from reasoning.collaborative import fill_unknown
from tests.baselines.synthetic import items_frame


def _train() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "b"],
            "item_id": ["3", "1", "2", "1"],
            "timestamp": [5, 5, 1, 7],
        }
    )


def test_sequences_follow_timestamp_then_item_id() -> None:
    catalog = Catalog.build(_train(), items_frame(5))
    seqs = user_sequences(_train(), catalog)
    ids = [catalog.item_ids[i] for i in seqs[catalog.user_index["a"]]]
    assert ids == ["2", "1", "3"]


def test_catalog_includes_train_items_missing_from_items_frame() -> None:
    train = _train().assign(item_id=["3", "1", "2", "99"])
    catalog = Catalog.build(train, items_frame(4))
    assert "99" in catalog.item_index and catalog.n_items == 5


def test_missing_column_is_named() -> None:
    with pytest.raises(ValueError, match="timestamp"):
        Catalog.build(_train().drop(columns="timestamp"), items_frame(4))


def test_merge_history_overlap_cases() -> None:
    past = np.array([1, 2, 3, 4])
    assert merge_history(past, np.array([3, 4])).tolist() == [1, 2, 3, 4]
    assert merge_history(past, np.array([3, 4, 5])).tolist() == [1, 2, 3, 4, 5]
    assert merge_history(past, np.array([7, 8])).tolist() == [1, 2, 3, 4, 7, 8]
    assert merge_history(past, np.array([], dtype=np.int64)).tolist() == [1, 2, 3, 4]


def test_case_sequence_uses_train_log_for_known_and_history_for_unknown_users() -> None:
    catalog = Catalog.build(_train(), items_frame(5))
    seqs = user_sequences(_train(), catalog)
    known = Case("a", "4", ("1", "3"), ("4", "0"))
    unknown = Case("zz", "4", ("0", "nope", "2"), ("4", "1"))
    assert [catalog.item_ids[i] for i in case_sequence(known, catalog, seqs)] == ["2", "1", "3"]
    assert [catalog.item_ids[i] for i in case_sequence(unknown, catalog, seqs)] == ["0", "2"]


def test_fill_unknown_puts_unknown_candidates_last() -> None:
    scores = np.array([[0.5, 2.0, 0.0], [0.0, 0.0, 0.0]])
    cand = np.array([[1, 2, -1], [-1, -1, -1]])
    out = fill_unknown(scores, cand)
    assert out[0, 2] < out[0].min(initial=np.inf, where=cand[0] >= 0)
    assert np.isfinite(out).all()


def test_check_cases_rejects_ragged_candidate_lists() -> None:
    cases = [Case("a", "1", ("2",), ("1", "3")), Case("a", "1", ("2",), ("1",))]
    with pytest.raises(ValueError, match="same number of candidates"):
        check_cases(cases)


def test_negative_sampling_avoids_positives() -> None:
    users = np.array([0, 0, 0, 1])
    items = np.array([0, 1, 2, 3])
    positives = PositiveSet(users, items, n_items=5)
    rng = np.random.default_rng(0)
    draws = positives.sample_negatives(rng, np.zeros(500, dtype=np.int64))
    assert set(draws.tolist()) <= {3, 4}
    found = positives.contains(np.array([0, 1, 1]), np.array([2, 3, 0]))
    assert found.tolist() == [True, True, False]
