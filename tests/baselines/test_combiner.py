"""baselines.combiner: the listwise linear combiner of per-candidate features."""

from __future__ import annotations

import numpy as np

from baselines.combiner import ListwiseCombiner, listwise_nll
from reasoning.collaborative import zscore_per_case


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Feature 0 is informative, feature 1 noise, feature 2 constant within each case."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 20, 3))
    target = rng.integers(0, 20, size=n)
    x[np.arange(n), target, 0] += 2.0
    x[:, :, 2] = rng.normal(size=(n, 1))
    return x * 50 + 7, target  # scale/shift per feature must not matter


def test_zscore_per_case() -> None:
    x, _ = _data(10, 0)
    z = zscore_per_case(x)
    np.testing.assert_allclose(z[:, :, :2].mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(z[:, :, :2].std(axis=1), 1, atol=1e-12)
    assert (z[:, :, 2] == 0).all()


def test_learns_the_informative_feature_and_beats_it_alone_out_of_sample() -> None:
    x, target = _data(400, 1)
    combiner = ListwiseCombiner.fit_cv(x, target, names=("good", "noise", "flat"))
    w = combiner.describe()["weights"]
    assert isinstance(w, dict)
    assert w["good"] > 1.0 and abs(w["noise"]) < 0.3 and w["flat"] == 0.0
    x_test, t_test = _data(400, 2)
    uniform = listwise_nll(np.zeros((400, 20)), t_test)
    assert listwise_nll(combiner.score(x_test), t_test) < uniform - 0.3
