"""The request path's array helpers (`graph_store.ranking`) against their plain
definitions, on seeded random inputs shaped like counts and votes (many ties)."""

from __future__ import annotations

import numpy as np
import pytest

from graph_store.ranking import _kth_largest, _members, _slots, _top_k


@pytest.mark.parametrize("scale", [1, 1000])
def test_top_k_is_the_lexsort_prefix(scale: int) -> None:
    rng = np.random.default_rng(scale)
    for _ in range(2000):
        n = int(rng.integers(1, 400))
        k = int(rng.integers(1, 60))
        primary = rng.integers(0, int(rng.integers(1, 30)), n) * scale
        secondary = rng.permutation(n)
        expected = np.lexsort((secondary, -primary))[:k]
        assert _top_k(primary, secondary, k).tolist() == expected.tolist()


def test_kth_largest_counts_small_values_and_partitions_wide_ones() -> None:
    rng = np.random.default_rng(0)
    for values in (rng.integers(0, 5, 1000), rng.integers(-(2**40), 2**40, 1000)):
        for k in (1, 7, 500, 1000):
            assert _kth_largest(values, k) == int(np.sort(values)[::-1][k - 1])


@pytest.mark.parametrize("universe", [50, 10**9])  # the table, then the search
def test_slots_finds_each_value_in_wanted(universe: int) -> None:
    rng = np.random.default_rng(universe)
    values = rng.integers(0, 50, 300)
    wanted = rng.choice(50, 7, replace=False)
    expected = [wanted.tolist().index(v) if v in wanted else -1 for v in values.tolist()]
    assert _slots(values, wanted, universe).tolist() == expected
    assert _slots(values, wanted[:0], universe).tolist() == [-1] * len(values)


@pytest.mark.parametrize("universe", [50, 10**9])
def test_members_is_isin(universe: int) -> None:
    rng = np.random.default_rng(universe)
    values, wanted = rng.integers(0, 50, 300), rng.integers(0, 50, 20)
    assert _members(values, wanted, universe).tolist() == np.isin(values, wanted).tolist()
