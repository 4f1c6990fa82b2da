"""The classical rating models: means, the user + item bias model, biased MF.

The service's rating model blends with one of them, fitted on the store's ratings
(`service.rate.model`); the offline evaluation scores them all and tunes the bias and MF
hyper-parameters on the valid split (`evaluation.rating_baselines`).

    log = encode_log(train)                             # a training log with ratings
    model = fit_mf(log, MFConfig(factors=8))            # or fit_bias(log, BiasConfig())
    predicted = model.predict([("42", "7"), ...])       # clipped to [1, 5]
    predict = fit_baseline("mf", train, {"factors": 4}) # any of BASELINES, by name

Every model is fitted on a training log and predicts (user, item) pairs; a user or item
the log does not rate gets no bias and no factors, so it falls back to what the rest of
the model knows (at worst the global mean). Predictions are clipped to [1, 5].

- ``global_mean``, ``user_mean``, ``item_mean`` (`fit_means`): plain means.
- ``bias``: mu + b_u + b_i, minimising the squared error plus ``reg_user * sum b_u^2 +
  reg_item * sum b_i^2`` by alternating exact minimisation (each step is closed form:
  b_i = sum(r - mu - b_u) / (reg_item + n_i), then the same for b_u).
- ``mf``: mu + b_u + b_i + p_u . q_i (biased matrix factorisation, SVD-style), by
  alternating least squares: with the items fixed, each user's (p_u, b_u) is one ridge
  regression of r - mu - b_i on (q_i, 1) with penalty ``reg`` on p_u and ``reg_bias`` on
  b_u; then the same for the items. Seeded Gaussian start; deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from common.errors import UserInputError

RATING_RANGE = (1.0, 5.0)
MEANS = ("global_mean", "user_mean", "item_mean")
BASELINES = (*MEANS, "bias", "mf")


@dataclass(frozen=True)
class RatingLog:
    """A training log encoded for fitting: index arrays, ratings and the id maps."""

    user: np.ndarray  # int64 user index per rating
    item: np.ndarray  # int64 item index per rating
    rating: np.ndarray  # float64
    user_index: dict[str, int]
    item_index: dict[str, int]

    @property
    def n_users(self) -> int:
        return len(self.user_index)

    @property
    def n_items(self) -> int:
        return len(self.item_index)


def encode_log(train: pd.DataFrame) -> RatingLog:
    """The rated rows of ``train`` (user_id, item_id, rating) as a `RatingLog`."""
    rated = train.loc[train["rating"].notna()]
    if rated.empty:
        raise UserInputError("the training log has no ratings to fit the baselines on")
    users, user_ids = pd.factorize(rated["user_id"].astype(str))
    items, item_ids = pd.factorize(rated["item_id"].astype(str))
    return RatingLog(
        users.astype(np.int64),
        items.astype(np.int64),
        rated["rating"].to_numpy(np.float64),
        {str(u): k for k, u in enumerate(user_ids)},
        {str(i): k for k, i in enumerate(item_ids)},
    )


@dataclass(frozen=True)
class MeanModel:
    """The three mean baselines' tables: the global mean, per-user and per-item means."""

    overall: float
    user_mean: dict[str, float]
    item_mean: dict[str, float]

    def predict(self, name: str, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """``name``'s predictions (one of `MEANS`); unknown ids get the global mean."""
        if name == "user_mean":
            return np.array([self.user_mean.get(u, self.overall) for u, _ in pairs])
        if name == "item_mean":
            return np.array([self.item_mean.get(i, self.overall) for _, i in pairs])
        return np.full(len(pairs), self.overall)


def fit_means(train: pd.DataFrame) -> MeanModel:
    """The global, user and item mean ratings of ``train``."""
    rated = train.loc[train["rating"].notna()]
    if rated.empty:
        raise UserInputError("the training log has no ratings to fit the baselines on")
    by_user = rated.groupby(rated["user_id"].astype(str))["rating"].mean()
    by_item = rated.groupby(rated["item_id"].astype(str))["rating"].mean()
    return MeanModel(
        float(rated["rating"].mean()),
        {str(k): float(v) for k, v in by_user.items()},
        {str(k): float(v) for k, v in by_item.items()},
    )


def mean_predictions(
    train: pd.DataFrame, pairs: Sequence[tuple[str, str]]
) -> dict[str, np.ndarray]:
    """The three mean baselines for (user, item) pairs; unknown ids get the global mean."""
    means = fit_means(train)
    return {name: means.predict(name, pairs) for name in MEANS}


@dataclass(frozen=True)
class BiasConfig:
    """The user + item bias model's hyper-parameters."""

    reg_user: float = field(default=5.0, metadata={"help": "L2 penalty on each user bias"})
    reg_item: float = field(default=3.0, metadata={"help": "L2 penalty on each item bias"})
    iterations: int = field(default=15, metadata={"help": "alternating (item, user) sweeps"})


@dataclass(frozen=True)
class MFConfig:
    """The biased matrix factorisation's hyper-parameters."""

    factors: int = field(default=8, metadata={"help": "latent dimensions of p_u and q_i"})
    reg: float = field(default=15.0, metadata={"help": "L2 penalty on each p_u and q_i"})
    reg_bias: float = field(default=5.0, metadata={"help": "L2 penalty on each b_u and b_i"})
    iterations: int = field(default=12, metadata={"help": "ALS sweeps (users, then items)"})
    init_std: float = field(default=0.1, metadata={"help": "std of the Gaussian start"})
    seed: int = field(default=0, metadata={"help": "seed of the Gaussian start"})


@dataclass(frozen=True)
class FactorModel:
    """mu + b_u + b_i + p_u . q_i (no factors: the bias model)."""

    mu: float
    user_bias: np.ndarray
    item_bias: np.ndarray
    user_factors: np.ndarray  # (n_users, k), k may be 0
    item_factors: np.ndarray  # (n_items, k)
    user_index: dict[str, int]
    item_index: dict[str, int]

    def predict(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Clipped predictions for (user, item) pairs; unknown ids contribute nothing."""
        u = np.array([self.user_index.get(p[0], -1) for p in pairs], dtype=np.int64)
        i = np.array([self.item_index.get(p[1], -1) for p in pairs], dtype=np.int64)
        known_u, known_i = u >= 0, i >= 0
        uu, ii = np.maximum(u, 0), np.maximum(i, 0)
        out = self.mu + np.where(known_u, self.user_bias[uu], 0.0)
        out += np.where(known_i, self.item_bias[ii], 0.0)
        if self.user_factors.shape[1]:
            dot = np.einsum("nk,nk->n", self.user_factors[uu], self.item_factors[ii])
            out += np.where(known_u & known_i, dot, 0.0)
        return np.clip(out, *RATING_RANGE)


def fit_bias(log: RatingLog, config: BiasConfig) -> FactorModel:
    """The regularised user + item bias model (see the module docstring)."""
    mu = float(log.rating.mean())
    n_u = np.bincount(log.user, minlength=log.n_users)
    n_i = np.bincount(log.item, minlength=log.n_items)
    b_u, b_i = np.zeros(log.n_users), np.zeros(log.n_items)
    centred = log.rating - mu
    for _ in range(config.iterations):
        b_i = np.bincount(log.item, centred - b_u[log.user], log.n_items) / (config.reg_item + n_i)
        b_u = np.bincount(log.user, centred - b_i[log.item], log.n_users) / (config.reg_user + n_u)
    no_factors = (np.zeros((log.n_users, 0)), np.zeros((log.n_items, 0)))
    return FactorModel(mu, b_u, b_i, *no_factors, log.user_index, log.item_index)


def _groups(index: np.ndarray, n: int) -> list[np.ndarray]:
    """Row numbers per group 0..n-1."""
    order = np.argsort(index, kind="stable")
    bounds = np.searchsorted(index[order], np.arange(n + 1))
    return [order[bounds[g] : bounds[g + 1]] for g in range(n)]


def _ridge_side(
    groups: list[np.ndarray],
    other: np.ndarray,
    other_factors: np.ndarray,
    target: np.ndarray,
    penalty: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per group: ridge of ``target`` on (other's factors, 1); returns (factors, biases)."""
    k = other_factors.shape[1]
    design = np.hstack([other_factors, np.ones((len(other_factors), 1))])
    solved = np.zeros((len(groups), k + 1))
    for g, rows in enumerate(groups):
        if len(rows):
            x = design[other[rows]]
            solved[g] = np.linalg.solve(x.T @ x + penalty, x.T @ target[rows])
    return solved[:, :k], solved[:, k]


def fit_mf(log: RatingLog, config: MFConfig) -> FactorModel:
    """Biased matrix factorisation by alternating least squares (module docstring)."""
    if config.factors < 1:
        raise ValueError(f"factors must be >= 1, got {config.factors}")
    rng = np.random.default_rng(config.seed)
    k = config.factors
    mu = float(log.rating.mean())
    p = rng.normal(0.0, config.init_std, (log.n_users, k))
    q = rng.normal(0.0, config.init_std, (log.n_items, k))
    b_u, b_i = np.zeros(log.n_users), np.zeros(log.n_items)
    penalty = np.diag([config.reg] * k + [config.reg_bias])
    by_user, by_item = _groups(log.user, log.n_users), _groups(log.item, log.n_items)
    centred = log.rating - mu
    for _ in range(config.iterations):
        p, b_u = _ridge_side(by_user, log.item, q, centred - b_i[log.item], penalty)
        q, b_i = _ridge_side(by_item, log.user, p, centred - b_u[log.user], penalty)
    return FactorModel(mu, b_u, b_i, p, q, log.user_index, log.item_index)


Predictor = Callable[[Sequence[tuple[str, str]]], np.ndarray]


def fit_baseline(name: str, train: pd.DataFrame, params: dict[str, Any] | None = None) -> Predictor:
    """The baseline ``name`` (one of `BASELINES`) fitted on ``train``'s ratings, as a
    predictor of (user, item) pairs; ``params``: the bias or MF hyper-parameters (a
    `BiasConfig` / `MFConfig`'s fields; default: their defaults); the means take none.

    >>> log = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"],
    ...                     "rating": [4.0, 2.0, 5.0]})
    >>> fit_baseline("item_mean", log)([("b", "x"), ("b", "z")]).tolist()
    [4.5, 3.6666666666666665]
    """
    if name in MEANS:
        means = fit_means(train)
        return lambda pairs: means.predict(name, pairs)
    if name == "bias":
        return fit_bias(encode_log(train), BiasConfig(**(params or {}))).predict
    if name == "mf":
        return fit_mf(encode_log(train), MFConfig(**(params or {}))).predict
    raise UserInputError(f"unknown rating baseline {name!r}; one of {', '.join(BASELINES)}")
