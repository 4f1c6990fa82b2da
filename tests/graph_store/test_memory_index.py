"""The graph index's packed-key sort gives exactly ``np.lexsort``'s order."""

from __future__ import annotations

import numpy as np
import pytest

from graph_store.index import lexorder


@pytest.mark.parametrize("n", [0, 1, 7, 2000])
def test_lexorder_matches_lexsort_with_ties_kept_in_order(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(20):
        user, item = rng.integers(0, 30, n), rng.integers(0, 25, n)
        ts = rng.integers(0, 20, n) * int(rng.integers(1, 10**9))  # dense or sparse values
        keys = (ts, item, user)
        assert lexorder(keys, stable=True).tolist() == np.lexsort(keys).tolist()


def test_lexorder_handles_negative_and_huge_keys() -> None:
    rng = np.random.default_rng(1)
    ts = np.where(rng.random(500) < 0.3, -(2**62), rng.integers(8 * 10**8, 9 * 10**8, 500))
    keys = (-ts, rng.integers(-5, 5, 500), rng.integers(0, 3, 500))
    assert lexorder(keys, stable=True).tolist() == np.lexsort(keys).tolist()


def test_lexorder_falls_back_when_the_packed_key_would_overflow() -> None:
    rng = np.random.default_rng(2)
    keys = tuple(rng.integers(-(2**40), 2**40, 3000) for _ in range(3))  # 3 x ~12 bits: fits
    assert lexorder(keys, stable=True).tolist() == np.lexsort(keys).tolist()
    wide = tuple(np.arange(3000)[::-1] * 7 + k for k in range(6))  # 6 x 12 bits > 62 bits
    assert lexorder(wide, stable=True).tolist() == np.lexsort(wide).tolist()
