"""The request path's array kernels (`graph_store.kernels`) against their plain
definitions, on seeded random inputs shaped like counts and votes (many ties)."""

from __future__ import annotations

import numpy as np
import pytest

from graph_store.kernels import (
    ABSENT,
    gather,
    kth_largest,
    lookup,
    members,
    run_ranks,
    slots,
    tally,
    top_k,
)


@pytest.mark.parametrize("scale", [1, 1000])
def test_top_k_is_the_lexsort_prefix(scale: int) -> None:
    rng = np.random.default_rng(scale)
    for _ in range(2000):
        n = int(rng.integers(1, 400))
        k = int(rng.integers(1, 60))
        primary = rng.integers(0, int(rng.integers(1, 30)), n) * scale
        secondary = rng.permutation(n)
        expected = np.lexsort((secondary, -primary))[:k]
        assert top_k(primary, secondary, k).tolist() == expected.tolist()


def test_kth_largest_counts_small_values_and_partitions_wide_ones() -> None:
    rng = np.random.default_rng(0)
    for values in (rng.integers(0, 5, 1000), rng.integers(-(2**40), 2**40, 1000)):
        for k in (1, 7, 500, 1000):
            assert kth_largest(values, k) == int(np.sort(values)[::-1][k - 1])


@pytest.mark.parametrize("universe", [50, 10**9])  # the table, then the search
def test_slots_finds_each_value_in_wanted(universe: int) -> None:
    rng = np.random.default_rng(universe)
    values = rng.integers(0, 50, 300)
    wanted = rng.choice(50, 7, replace=False)
    expected = [wanted.tolist().index(v) if v in wanted else -1 for v in values.tolist()]
    assert slots(values, wanted, universe).tolist() == expected
    assert slots(values, wanted[:0], universe).tolist() == [-1] * len(values)


@pytest.mark.parametrize("universe", [50, 10**9])
def test_members_is_isin(universe: int) -> None:
    rng = np.random.default_rng(universe)
    values, wanted = rng.integers(0, 50, 300), rng.integers(0, 50, 20)
    assert members(values, wanted, universe).tolist() == np.isin(values, wanted).tolist()


@pytest.mark.parametrize("universe", [60, 10**6])  # the bincount, then the sort
def test_tally_is_unique_with_counts_and_weights(universe: int) -> None:
    rng = np.random.default_rng(universe)
    values = rng.integers(0, 60, 500)
    weights = rng.random(500)
    distinct, counts = tally(values, universe)
    expected, expected_counts = np.unique(values, return_counts=True)
    assert distinct.tolist() == expected.tolist() and counts.tolist() == expected_counts.tolist()
    _, summed = tally(values, universe, weights)
    assert np.allclose(summed, [weights[values == v].sum() for v in expected])


def test_gather_and_run_ranks_walk_csr_rows() -> None:
    ptr = np.array([0, 3, 3, 7, 9])
    pos, owner = gather(ptr, np.array([2, 0, 1]), cap=3)
    assert pos.tolist() == [3, 4, 5, 0, 1, 2] and owner.tolist() == [0, 0, 0, 1, 1, 1]
    assert run_ranks(owner, 3).tolist() == [0, 1, 2, 0, 1, 2]


def test_lookup_finds_pairs_in_sorted_keys() -> None:
    key = np.array([0 * 10 + 3, 1 * 10 + 2, 1 * 10 + 7, 4 * 10 + 0])
    when = np.array([5, 6, 7, 8])
    got = lookup(key, when, 10, np.array([[1], [4]]), np.array([[2, 7, 0]]))
    assert got.tolist() == [[6, 7, ABSENT], [ABSENT, ABSENT, 8]]
    assert lookup(key, when, 10, 1, np.array([7, 3])).tolist() == [7, ABSENT]
