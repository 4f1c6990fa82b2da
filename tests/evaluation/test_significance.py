"""evaluation.significance: McNemar's exact test."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import evaluation.significance as significance
from evaluation.significance import binomial_two_sided, mcnemar_exact


def test_docstring_example() -> None:
    assert doctest.testmod(significance).failed == 0


def test_known_values() -> None:
    # 0 of 10 discordant pairs favour A: p = 2 * 2^-10
    assert binomial_two_sided(0, 10) == pytest.approx(2 / 1024)
    # symmetric counts can never be significant
    assert binomial_two_sided(5, 10) == 1.0
    assert binomial_two_sided(0, 0) == 1.0
    # scipy.stats.binomtest(15, 40).pvalue
    assert binomial_two_sided(15, 40) == pytest.approx(0.15386, abs=1e-5)


def test_only_discordant_pairs_count_and_direction_does_not_matter() -> None:
    a = np.array([1, 1, 0, 0, 1, 0, 1, 1], bool)
    b = np.array([1, 0, 0, 1, 0, 0, 1, 0], bool)
    r = mcnemar_exact(a, b)
    assert (r.a_only, r.b_only) == (3, 1)
    assert r.p_value == mcnemar_exact(b, a).p_value == pytest.approx(0.625)
    same = mcnemar_exact(a, a)
    assert (same.a_only, same.b_only, same.p_value) == (0, 0, 1.0)


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        mcnemar_exact([True, False], [True])
