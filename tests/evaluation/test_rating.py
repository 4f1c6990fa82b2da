"""Rating evaluation (`evaluation.rating`, inference `reasoning.rater`): the mean baselines
on a hand-computed frame, the protocol's targets, the expected-rating read-out and
ValidRatio, and a tiny model scored end to end."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluation.protocol import load_cases
from evaluation.rating import error_metrics, evaluate_rating, rating_targets
from evaluation.rating_baselines import BASELINES, mean_predictions
from reasoning.backends import make_backend
from reasoning.rater import CHOICES, predict_ratings, prediction_from_logprobs
from recdata import load_dataset
from recdata.schema import Dataset


@pytest.fixture(scope="module")
def ml100k() -> Dataset:
    return load_dataset("ml-100k")


def _toy() -> Dataset:
    """u1, u2 evaluated (>= 5 interactions); u3 only ever in the training log."""
    rows = [("u1", f"i{k}", k, r) for k, r in zip(range(1, 7), [5, 4, 3, 4, 5, 2], strict=True)]
    rows += [
        ("u2", i, t, r)
        for i, t, r in [("i1", 1, 1), ("i2", 2, 2), ("i3", 3, 3), ("i7", 4, 4), ("i9", 5, 3)]
    ]
    rows += [("u3", "i6", 1, 4), ("u3", "i8", 2, 5)]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    items = pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(1, 31)],
            "title": [f"Film {k}" for k in range(1, 31)],
            "genres": ["Drama"] * 30,
            "year": ["1990"] * 30,
        }
    )
    return Dataset.from_frames("toy", inter, items)


def test_baselines_match_a_hand_computed_frame() -> None:
    # test targets: u1 -> i6 (true 2), u2 -> i9 (true 3, an item the log never rates).
    # training log: u1 5,4,3,4,5; u2 1,2,3,4; u3 4 (i6), 5 (i8): 11 ratings summing to 40.
    results = evaluate_rating(_toy(), ["test"])["test"]
    assert "metrics" not in results  # no model given: baselines only
    base = results["baselines"]
    g = 40 / 11
    assert base["global_mean"]["MAE"] == pytest.approx(((g - 2) + (g - 3)) / 2)
    assert base["global_mean"]["RMSE"] == pytest.approx(
        math.sqrt(((g - 2) ** 2 + (g - 3) ** 2) / 2)
    )
    assert base["user_mean"]["MAE"] == pytest.approx((2.2 + 0.5) / 2)  # 21/5 and 10/4
    assert base["user_mean"]["RMSE"] == pytest.approx(math.sqrt((2.2**2 + 0.5**2) / 2))
    # item mean: i6 is rated 4 by u3; i9 is unseen and falls back to the global mean
    assert base["item_mean"]["MAE"] == pytest.approx((2 + (g - 3)) / 2)
    assert base["item_mean"]["RMSE"] == pytest.approx(math.sqrt((4 + (g - 3) ** 2) / 2))
    assert base["global_mean"]["cases"] == 2


def test_unseen_users_fall_back_to_the_global_mean() -> None:
    train = pd.DataFrame(
        {"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"], "rating": [4.0, 2.0, 3.0]}
    )
    predicted = mean_predictions(train, [("a", "x"), ("new", "new")])
    assert predicted["user_mean"].tolist() == [3.0, 3.0]  # a: 3.0; new: global 3.0
    assert predicted["item_mean"].tolist() == [3.5, 3.0]
    assert error_metrics([1.0, 5.0], [2.0, 2.0]) == {"MAE": 2.0, "RMSE": math.sqrt(5), "cases": 2}


def test_targets_are_the_protocol_cases_with_their_ratings(ml100k: Dataset) -> None:
    targets = rating_targets(ml100k, "valid", limit=5)
    cases = load_cases(ml100k, "valid")[:5]
    inter = ml100k.interactions.set_index(["user_id", "item_id"])["rating"]
    for target, case in zip(targets, cases, strict=True):
        assert (target.user_id, target.item_id) == (case.user_id, case.target)
        assert target.rating == inter[(case.user_id, case.target)]
        assert tuple(h.item.item_id for h in target.history) == case.history
        assert [h.rating for h in target.history] == [
            inter[(case.user_id, h)] for h in case.history
        ]
    toy = rating_targets(_toy(), "test")
    assert [(t.user_id, t.item_id, t.rating) for t in toy] == [("u1", "i6", 2.0), ("u2", "i9", 3.0)]
    assert [h.rating for h in toy[0].history] == [5, 4, 3, 4, 5]


def test_the_prediction_is_the_expectation_and_valid_needs_the_three_steps() -> None:
    probs = [0.1, 0.1, 0.2, 0.4, 0.2]
    logprobs = {c: math.log(p) for c, p in zip(CHOICES, probs, strict=True)}
    steps = "<analyse_user>a</analyse_user>\n<analyse_item>b</analyse_item>\n<match>c</match>\n"
    good = prediction_from_logprobs(logprobs, steps)
    assert good.expected == pytest.approx(0.1 + 0.2 + 0.6 + 1.6 + 1.0)
    assert good.argmax == 4 and good.valid
    assert sum(good.probabilities) == pytest.approx(1.0)
    assert not prediction_from_logprobs(logprobs, "I think it is good.").valid
    swapped = "<match>c</match><analyse_user>a</analyse_user>"
    assert not prediction_from_logprobs(logprobs, swapped).valid


def test_a_tiny_model_predicts_ratings_in_range(tiny_model_dir: Path, ml100k: Dataset) -> None:
    backend = make_backend("local", model_path=str(tiny_model_dir), batch_size=2)
    tokenizer = backend.tokenizer  # type: ignore[attr-defined]
    assert all(len(tokenizer.encode(c, add_special_tokens=False)) == 1 for c in CHOICES)
    targets = rating_targets(ml100k, "valid", limit=3)
    predictions = asyncio.run(predict_ratings(backend, targets, max_tokens=6, batch_size=2))
    assert len(predictions) == 3
    for p in predictions:
        assert 1.0 <= p.expected <= 5.0 and p.argmax in range(1, 6)
        assert sum(p.probabilities) == pytest.approx(1.0)
    result = evaluate_rating(
        ml100k,
        ["valid"],
        limit=3,
        model_name="tiny",
        max_tokens=6,
        batch_size=2,
        make_backend=lambda: backend,
    )["valid"]
    m = result["metrics"]
    truth = np.array([t.rating for t in targets])
    expected = np.array([p.expected for p in predictions])  # greedy: the same answers
    assert m["MAE"] == pytest.approx(float(np.mean(np.abs(expected - truth))))
    assert m["RMSE"] == pytest.approx(float(np.sqrt(np.mean((expected - truth) ** 2))))
    assert m["MAE"] <= m["RMSE"] and m["cases"] == 3 and 0.0 <= m["ValidRatio"] <= 1.0
    assert tuple(result["baselines"]) == BASELINES
    assert result["rows"][0]["model"] == "tiny" and result["rows"][0]["n"] == 3
