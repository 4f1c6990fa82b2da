"""ItemKNN and the graph co-interaction scorer (including its pure scoring core)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from baselines.graph import (
    GraphConfig,
    GraphRanker,
    co_count_matrix,
    co_interaction_scores,
    path_counts,
)
from baselines.itemknn import ItemKNNConfig, ItemKNNRanker, cosine_neighbours
from evaluation.ranker import Case
from tests.baselines.synthetic import cyclic_log, items_frame, ring_case, target_first_rate


def _brute_force_paths(x: np.ndarray, history: list[int], cand: list[int]) -> list[int]:
    """Count u -> h -> v -> c paths by enumeration (h != c)."""
    out = []
    for c in cand:
        total = 0
        for h in set(history):
            if h == c:
                continue
            total += sum(int(x[v, h] and x[v, c]) for v in range(x.shape[0]))
        out.append(total)
    return out


def test_scoring_core_counts_paths_and_ignores_diagonal() -> None:
    rng = np.random.default_rng(3)
    x = (rng.random((12, 9)) < 0.4).astype(float)
    history, cand = [0, 2, 2, 5], [1, 2, 3, 8]
    expected = _brute_force_paths(x, history, cand)
    co = co_count_matrix(sp.csr_matrix(x))
    assert co.diagonal().sum() == 0
    got = co_interaction_scores(co, np.array(history), np.array(cand))
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(
        path_counts(sp.csc_matrix(x), np.array(history), np.array(cand)), expected
    )
    # the diagonal is ignored even when the matrix still carries it
    full = sp.csr_matrix(x.T @ x)
    with_diagonal = co_interaction_scores(full, np.array(history), np.array(cand))
    np.testing.assert_array_equal(with_diagonal, expected)


def test_scoring_core_damping_divides_by_candidate_degree() -> None:
    x = sp.csr_matrix(np.array([[1, 1, 1], [1, 0, 1], [0, 0, 1]], dtype=float))
    degree = np.asarray(x.sum(axis=0)).ravel()
    raw = co_interaction_scores(co_count_matrix(x), np.array([0]), np.array([1, 2]))
    damped = co_interaction_scores(
        co_count_matrix(x), np.array([0]), np.array([1, 2]), degree, damping=0.5
    )
    np.testing.assert_allclose(damped, raw / np.sqrt(degree[[1, 2]]))
    np.testing.assert_allclose(path_counts(x.tocsc(), np.array([0]), np.array([1, 2]), 0.5), damped)


def test_cosine_neighbours_keeps_top_k_and_shrinks() -> None:
    rng = np.random.default_rng(0)
    x = sp.csr_matrix((rng.random((30, 15)) < 0.3).astype(float))
    full = cosine_neighbours(x, None, 0.0).toarray()
    xd = x.toarray()
    co = xd.T @ xd
    norms = np.sqrt(np.diag(co))
    expected = co / np.maximum(np.outer(norms, norms), 1e-12)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(full, expected, atol=1e-12)
    top = cosine_neighbours(x, 3, 0.0).toarray()
    assert ((top > 0).sum(axis=1) <= 3).all()
    for row in range(15):
        kept = np.flatnonzero(top[row])
        if len(kept):
            assert full[row, kept].min() >= np.sort(full[row])[-3] - 1e-12
    assert (cosine_neighbours(x, None, 5.0).toarray() <= full + 1e-12).all()


@pytest.mark.parametrize(
    "ranker",
    [
        ItemKNNRanker(),
        ItemKNNRanker(ItemKNNConfig(neighbours=None, history_window=None)),
        GraphRanker(),
        GraphRanker(GraphConfig(history_window=None, damping=0.0)),
    ],
    ids=["itemknn", "itemknn-full", "graph", "graph-raw"],
)
def test_next_ring_item_ranks_first(ranker: ItemKNNRanker | GraphRanker) -> None:
    train = cyclic_log(200)
    ranker.fit(train, items_frame(60))
    unknown = [ring_case(f"new{s}", s) for s in range(0, 60, 6)]
    result = ranker.rank(unknown)
    assert result.scores.shape == (10, 20) and result.valid.all()
    assert target_first_rate(result.scores, unknown) == 1.0


@pytest.mark.parametrize("ranker_type", [ItemKNNRanker, GraphRanker])
def test_known_user_is_scored_from_train_sequence_not_just_case_history(
    ranker_type: type[ItemKNNRanker] | type[GraphRanker],
) -> None:
    # u0's train log ends with 10,11; the case's (stale, capped) history names other items.
    rows = [("u0", "10", 1), ("u0", "11", 2)]
    rows += [(f"v{k}", "11", 1) for k in range(3)] + [(f"v{k}", "12", 2) for k in range(3)]
    rows += [(f"w{k}", "1", 1) for k in range(3)] + [(f"w{k}", "2", 2) for k in range(3)]
    train = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    ranker = ranker_type()
    ranker.fit(train, items_frame(20))
    case = Case("u0", "12", ("11",), ("2", "12"))
    stranger = Case("nobody", "2", ("1",), ("2", "12"))
    scores = ranker.rank([case, stranger]).scores
    assert scores[0, 1] > scores[0, 0]
    assert scores[1, 0] > scores[1, 1]


def test_unknown_candidate_scores_last() -> None:
    ranker = GraphRanker()
    ranker.fit(cyclic_log(50), items_frame(60))
    case = Case("x", "9", ("5", "6", "7", "8"), ("9", "ghost", "40"))
    scores = ranker.rank([case]).scores[0]
    assert scores[1] < scores[2] < scores[0]
