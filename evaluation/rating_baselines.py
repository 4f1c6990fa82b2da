"""The classical rating baselines: means, the user + item bias model, biased MF.

    r2rec eval --task rating --dataset ml-100k          # scores them all (evaluation.rating)

    chosen = select_config(fit_bias, BIAS_GRID, valid_log, valid_pairs, valid_truth)
    tuned = tune_on(valid_train, valid_pairs, valid_truth)   # both grids
    predictions, fit_seconds = baseline_predictions(train, pairs, tuned)   # all five

The models themselves are `reasoning.rating_models` (the service blends with one of
them); here each is fitted on a split's training log (`evaluation.rating.rated_log`:
everything before the split's targets).

Hyper-parameters are chosen on the valid split only (`select_config`: fit each grid
point on the valid log, keep the lowest MAE on the valid targets, ties to the earlier
point); the caller refits the chosen one on the split it reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd

from reasoning.rating_models import (
    BASELINES,
    MEANS,
    BiasConfig,
    FactorModel,
    MFConfig,
    RatingLog,
    encode_log,
    fit_bias,
    fit_mf,
    mean_predictions,
)

__all__ = [
    "BASELINES",
    "BiasConfig",
    "MFConfig",
    "Selection",
    "TunedBaselines",
    "baseline_predictions",
    "best_baseline",
    "encode_log",
    "fit_bias",
    "fit_mf",
    "mean_predictions",
    "select_config",
    "tune_on",
]


# The valid-split grids (small on purpose: every point is one fit on the valid log).
BIAS_GRID: tuple[BiasConfig, ...] = tuple(
    BiasConfig(reg_user=u, reg_item=i) for u in (1.0, 5.0, 25.0) for i in (1.0, 3.0, 10.0)
)
MF_GRID: tuple[MFConfig, ...] = tuple(
    MFConfig(factors=k, reg=r) for k in (4, 16) for r in (5.0, 15.0, 40.0)
)

C = TypeVar("C", BiasConfig, MFConfig)


@dataclass(frozen=True)
class Selection(Generic[C]):
    """The grid point chosen on valid, with every point's valid MAE and fit time."""

    config: C
    valid_mae: float  # NaN for the defaults
    grid: tuple[dict[str, Any], ...]  # per point: the config's fields, MAE, fit_seconds
    chosen_on: str = "valid"  # or "defaults": the valid split had no rated targets

    def describe(self) -> dict[str, Any]:
        """JSON-ready: the chosen hyper-parameters, its valid MAE, the whole grid."""
        return {
            "params": asdict(self.config),
            "chosen_on": self.chosen_on,
            "valid_MAE": self.valid_mae,
            "grid": list(self.grid),
        }


def select_config(
    fit: Callable[[RatingLog, C], FactorModel],
    grid: Sequence[C],
    log: RatingLog,
    pairs: Sequence[tuple[str, str]],
    truth: Sequence[float] | np.ndarray,
) -> Selection[C]:
    """Fit every grid point on ``log``; keep the lowest MAE on (pairs, truth)."""
    if not grid:
        raise ValueError("an empty grid")
    true = np.asarray(truth, dtype=np.float64)
    rows: list[dict[str, Any]] = []
    best: tuple[float, C] | None = None
    for config in grid:
        started = time.perf_counter()
        model = fit(log, config)
        seconds = time.perf_counter() - started
        mae = float(np.mean(np.abs(model.predict(pairs) - true)))
        rows.append({**asdict(config), "MAE": mae, "fit_seconds": round(seconds, 4)})
        if best is None or mae < best[0]:
            best = (mae, config)
    assert best is not None
    return Selection(best[1], best[0], tuple(rows))


@dataclass(frozen=True)
class TunedBaselines:
    """The bias and MF hyper-parameters chosen on the valid split (`tune_on`)."""

    bias: Selection[BiasConfig]
    mf: Selection[MFConfig]
    seconds: float

    def describe(self) -> dict[str, Any]:
        return {"bias": self.bias.describe(), "mf": self.mf.describe(), "seconds": self.seconds}


def tune_on(
    log: pd.DataFrame, pairs: Sequence[tuple[str, str]], truth: Sequence[float]
) -> TunedBaselines:
    """`select_config` of the bias and MF grids on the valid split's log and targets (no
    targets: the configs' defaults, marked ``chosen_on: defaults``)."""
    started = time.perf_counter()
    if not pairs:
        nan = float("nan")
        return TunedBaselines(
            Selection(BiasConfig(), nan, (), "defaults"),
            Selection(MFConfig(), nan, (), "defaults"),
            0.0,
        )
    encoded = encode_log(log)
    bias = select_config(fit_bias, BIAS_GRID, encoded, pairs, truth)
    mf = select_config(fit_mf, MF_GRID, encoded, pairs, truth)
    return TunedBaselines(bias, mf, time.perf_counter() - started)


def baseline_predictions(
    train: pd.DataFrame, pairs: Sequence[tuple[str, str]], tuned: TunedBaselines
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """(predictions, fit seconds) of every baseline for (user, item) pairs, fitted on
    ``train``'s ratings with the ``tuned`` hyper-parameters."""
    started = time.perf_counter()
    predictions = mean_predictions(train, pairs)
    seconds = dict.fromkeys(MEANS, time.perf_counter() - started)
    encoded = encode_log(train)
    for name, fit in (
        ("bias", lambda: fit_bias(encoded, tuned.bias.config)),
        ("mf", lambda: fit_mf(encoded, tuned.mf.config)),
    ):
        started = time.perf_counter()
        predictions[name] = fit().predict(pairs)
        seconds[name] = time.perf_counter() - started
    return predictions, seconds


def best_baseline(metrics: dict[str, dict[str, Any]]) -> str:
    """The baseline with the lowest MAE (ties: the earlier in `BASELINES`)."""
    return min(metrics, key=lambda name: (metrics[name]["MAE"], BASELINES.index(name)))
