"""Paired significance for two models scored on the same cases.

McNemar's exact test: of the cases where exactly one of the two models is right (the
discordant pairs), under the null each is equally likely to favour either model, so the
count favouring model A is Binomial(n_discordant, 1/2). The two-sided p-value doubles
the smaller tail (capped at 1).

    >>> a = [True, True, True, True, True, True, False, False]
    >>> b = [False, False, False, False, False, False, False, True]
    >>> r = mcnemar_exact(a, b)
    >>> (r.a_only, r.b_only, round(r.p_value, 4))
    (6, 1, 0.125)

For per-case errors (rating prediction), `paired_sign_flip` is a paired randomisation
test of the mean difference: under the null the two models' errors are exchangeable
within a case, so each difference's sign is a fair coin; the two-sided p-value is the
share of seeded sign flips whose |mean| reaches the observed one (with the observed
assignment counted, so p > 0).

    >>> r = paired_sign_flip([1.0, 1.0, 1.0, 1.0, 1.0, 1.0], [0.0] * 6, resamples=2000)
    >>> (r.mean_difference, r.p_value < 0.05)
    (1.0, True)
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


@dataclass(frozen=True)
class PairedResult:
    mean_difference: float  # mean of a - b over the cases
    p_value: float  # two-sided, from seeded sign flips
    resamples: int


def paired_sign_flip(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    resamples: int = 10_000,
    seed: int = 0,
) -> PairedResult:
    """Paired sign-flip test of mean(a - b) = 0 (e.g. per-target absolute errors)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or not len(x):
        raise ValueError(f"need two equal-length non-empty 1-d vectors, got {x.shape}, {y.shape}")
    diff = x - y
    observed = abs(float(diff.mean()))
    rng = np.random.default_rng(seed)
    reached, done = 0, 0
    while done < resamples:
        n = min(1000, resamples - done)
        signs = rng.integers(0, 2, size=(n, len(diff))) * 2 - 1
        reached += int(np.sum(np.abs(signs @ diff) / len(diff) >= observed - 1e-12))
        done += n
    return PairedResult(float(diff.mean()), (reached + 1) / (resamples + 1), resamples)
