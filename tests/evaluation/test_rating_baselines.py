"""The classical rating baselines (`evaluation.rating_baselines`): the bias model recovers
planted biases, MF beats it on a planted low-rank matrix, selection is by valid MAE and
deterministic, unknown ids fall back, and `evaluate_rating` reports every baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.rating import evaluate_rating, markdown_table
from evaluation.rating_baselines import (
    BASELINES,
    BiasConfig,
    MFConfig,
    encode_log,
    fit_bias,
    fit_mf,
    select_config,
)
from evaluation.significance import paired_sign_flip
from recdata.schema import Dataset


def _frame(users: np.ndarray, items: np.ndarray, ratings: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in users],
            "item_id": [f"i{i}" for i in items],
            "rating": ratings,
        }
    )


def _planted(rank: int, seed: int = 0, n_users: int = 120, n_items: int = 150, share=0.35):
    """Ratings mu + b_u + b_i (+ a rank-``rank`` term) + small noise, on a random share of
    the matrix; returns (train frame, test pairs, test truth, user biases, item biases)."""
    rng = np.random.default_rng(seed)
    b_u, b_i = rng.normal(0, 0.4, n_users), rng.normal(0, 0.4, n_items)
    full = 3.5 + b_u[:, None] + b_i[None, :] + rng.normal(0, 0.05, (n_users, n_items))
    if rank:
        full += rng.normal(0, 0.8, (n_users, rank)) @ rng.normal(0, 0.8, (rank, n_items))
    users, items = np.nonzero(rng.random((n_users, n_items)) < share)
    test = rng.random(len(users)) < 0.2
    frame = _frame(users[~test], items[~test], full[users[~test], items[~test]])
    pairs = [(f"u{u}", f"i{i}") for u, i in zip(users[test], items[test], strict=True)]
    return frame, pairs, full[users[test], items[test]], b_u, b_i


def test_the_bias_model_recovers_planted_biases() -> None:
    frame, _, _, b_u, b_i = _planted(rank=0, share=0.6)
    log = encode_log(frame)
    model = fit_bias(log, BiasConfig(reg_user=0.1, reg_item=0.1, iterations=30))
    fitted_u = np.array([model.user_bias[log.user_index[f"u{u}"]] for u in range(len(b_u))])
    fitted_i = np.array([model.item_bias[log.item_index[f"i{i}"]] for i in range(len(b_i))])
    # biases are identified up to a shared shift between users, items and mu
    shift = float(np.mean(fitted_u - b_u))
    assert np.max(np.abs(fitted_u - b_u - shift)) < 0.05
    assert np.max(np.abs(fitted_i - b_i + shift)) < 0.05
    assert model.mu - 3.5 + shift == pytest.approx(float(-np.mean(fitted_i - b_i)), abs=0.02)


def test_mf_beats_the_bias_model_on_a_planted_low_rank_matrix() -> None:
    frame, pairs, truth, _, _ = _planted(rank=2)
    log = encode_log(frame)
    bias = fit_bias(log, BiasConfig()).predict(pairs)
    mf = fit_mf(log, MFConfig(factors=2, reg=1.0, iterations=15)).predict(pairs)
    bias_mae, mf_mae = np.mean(np.abs(bias - truth)), np.mean(np.abs(mf - truth))
    assert mf_mae < 0.5 * bias_mae
    again = fit_mf(log, MFConfig(factors=2, reg=1.0, iterations=15)).predict(pairs)
    assert np.array_equal(mf, again)  # seeded: deterministic


def test_selection_keeps_the_lowest_valid_mae_and_fits_on_the_log_only() -> None:
    frame, pairs, truth, _, _ = _planted(rank=2)
    log = encode_log(frame)
    grid = (MFConfig(factors=1, reg=50.0), MFConfig(factors=2, reg=1.0), MFConfig(factors=2))
    chosen = select_config(fit_mf, grid, log, pairs, truth)
    maes = [row["MAE"] for row in chosen.grid]
    assert chosen.config == grid[int(np.argmin(maes))] and chosen.valid_mae == min(maes)
    assert chosen.describe()["chosen_on"] == "valid"
    assert select_config(fit_mf, grid, log, pairs, truth).grid[1]["MAE"] == maes[1]


def test_unknown_ids_fall_back_and_predictions_stay_in_range() -> None:
    frame = _frame(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), np.array([5.0, 5.0, 5.0, 1.0]))
    log = encode_log(frame)
    for model in (fit_bias(log, BiasConfig(0.0, 0.0)), fit_mf(log, MFConfig(factors=1, reg=0.1))):
        unknown, user_only = model.predict([("new", "new"), ("u0", "new")])
        assert unknown == pytest.approx(model.mu)
        assert user_only == pytest.approx(model.mu + model.user_bias[log.user_index["u0"]])
        assert np.all(model.predict([("u0", "i0"), ("u1", "i1")]) >= 1.0)
        assert np.all(model.predict([("u0", "i0"), ("u1", "i1")]) <= 5.0)
    assert len(fit_bias(log, BiasConfig()).predict([])) == 0


def test_the_paired_test_tells_a_real_gap_from_noise() -> None:
    rng = np.random.default_rng(1)
    base = rng.random(400)
    assert paired_sign_flip(base + 0.1, base).p_value < 0.001
    noisy = paired_sign_flip(base + rng.normal(0, 0.3, 400), base)
    assert noisy.p_value > 0.05 and noisy.resamples == 10_000
    assert paired_sign_flip(base + 0.1, base, seed=3) == paired_sign_flip(base + 0.1, base, seed=3)


def _toy() -> Dataset:
    """Eight users with 8 ratings each: a valid and a test target per user."""
    rng = np.random.default_rng(0)
    rows = [
        (f"u{u}", f"i{(u * 3 + k) % 12}", k, float(rng.integers(1, 6)))
        for u in range(8)
        for k in range(8)
    ]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(40)], "title": ["Film"] * 40})
    return Dataset.from_frames("toy-ratings", inter, items)


def test_evaluate_rating_reports_every_baseline_with_its_valid_choice() -> None:
    result = evaluate_rating(_toy(), ["test"])["test"]
    assert tuple(result["baselines"]) == BASELINES
    assert [row["model"] for row in result["rows"]] == list(BASELINES)
    assert all(row["n"] == 8 and row["MAE"] >= 0 for row in result["rows"])
    best = result["best_baseline"]
    assert result["baselines"][best]["p_vs_best"] is None
    assert all(m["fit_seconds"] >= 0 for m in result["baselines"].values())
    assert result["baseline_params"]["mf"]["chosen_on"] == "valid"
    table = markdown_table({"test": result})
    for name in BASELINES:
        assert f"| test | {name} | 8 |" in table
    assert "(chosen by MAE on): bias" in table and "(valid)" in table
