"""Paired significance for two rankers scored on the same cases.

McNemar's exact test: of the cases where exactly one of the two models is right (the
discordant pairs), under the null each is equally likely to favour either model, so the
count favouring model A is Binomial(n_discordant, 1/2). The two-sided p-value doubles
the smaller tail (capped at 1).

    >>> a = [True, True, True, True, True, True, False, False]
    >>> b = [False, False, False, False, False, False, False, True]
    >>> r = mcnemar_exact(a, b)
    >>> (r.a_only, r.b_only, round(r.p_value, 4))
    (6, 1, 0.125)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class McNemarResult:
    a_only: int  # cases model A got right and model B wrong
    b_only: int  # cases model B got right and model A wrong
    p_value: float  # two-sided exact binomial p on the discordant pairs


def binomial_two_sided(k: int, n: int) -> float:
    """Two-sided exact p-value of k successes in n Binomial(n, 1/2) trials."""
    if n == 0:
        return 1.0
    low = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(low + 1)) / 2**n
    return min(1.0, 2.0 * tail)


def mcnemar_exact(
    a_correct: Sequence[bool] | np.ndarray, b_correct: Sequence[bool] | np.ndarray
) -> McNemarResult:
    """McNemar's exact test on paired per-case outcomes (e.g. HR@1 hits) of models A and B."""
    a = np.asarray(a_correct, dtype=bool)
    b = np.asarray(b_correct, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need two equal-length 1-d outcome vectors, got {a.shape} and {b.shape}")
    a_only = int(np.sum(a & ~b))
    b_only = int(np.sum(b & ~a))
    return McNemarResult(a_only, b_only, binomial_two_sided(a_only, a_only + b_only))
