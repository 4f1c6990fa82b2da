import math

import numpy as np
import pytest

from evaluation.metrics import hr1_stderr, ndcg, summarise, target_ranks


def test_rank_counts_strictly_better_and_tied_candidates_against_the_target() -> None:
    scores = np.array(
        [
            [0.9, 0.1, 0.5, 0.2],  # target 0 is best -> rank 0
            [0.9, 0.1, 0.5, 0.2],  # target 2 has one above -> rank 1
            [0.5, 0.5, 0.5, 0.1],  # target 1 tied with two -> pessimistic rank 2
            [1.0, 1.0, 1.0, 1.0],  # all equal -> last
        ]
    )
    assert target_ranks(scores, np.array([0, 2, 1, 3])).tolist() == [0, 1, 2, 3]


def test_nan_scores_are_the_lowest_score() -> None:
    scores = np.array([[np.nan, 0.0, -5.0], [0.3, np.nan, np.nan]])
    assert target_ranks(scores, np.array([0, 0])).tolist() == [2, 0]


def test_hand_computed_metrics() -> None:
    ranks = np.array([0, 1, 4, 9, 19])
    m = summarise(ranks)
    assert m["HR@1"] == pytest.approx(0.2)
    assert m["HR@5"] == pytest.approx(0.6)
    assert m["HR@10"] == pytest.approx(0.8)
    expected_ndcg5 = (1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(6)) / 5
    assert m["NDCG@5"] == pytest.approx(expected_ndcg5)
    assert m["NDCG@10"] == pytest.approx(expected_ndcg5 + 1 / math.log2(11) / 5)
    assert m["HR@1 stderr"] == pytest.approx(math.sqrt(0.2 * 0.8 / 5))
    assert "ValidRatio" not in m


def test_generative_columns_count_invalid_outputs_as_misses() -> None:
    ranks = np.array([0, 0, 3, 0])
    valid = np.array([True, False, True, True])
    m = summarise(ranks, valid)
    assert m["ValidRatio"] == pytest.approx(0.75)
    assert m["HR@1 valid"] == pytest.approx(2 / 3)
    assert m["HR@1"] == pytest.approx(0.75)


def test_edge_values() -> None:
    assert ndcg(np.array([]), 10) == 0.0
    assert hr1_stderr(np.array([0, 0])) == 0.0
