"""Rating training data on real ML-100K users: leak-free targets and histories, grounded
cold-start completions that earn full rewards, and a deterministic, versioned dataset."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import cast

import pytest

from common.errors import UserInputError
from evaluation.protocol import load_cases, training_log
from reasoning.prompt import ItemInfo, describe_item
from reasoning.rating import RatedItem, parse_rating, render_rating_messages
from reasoning.rating_template import completion_facts
from reasoning.rewards import rating_format_reward, rating_reward
from recdata.schema import Dataset
from training.datasets import BuiltData, read_examples
from training.rating.data import RatingDataConfig, build_rating_dataset, item_infos
from training.rows import RatingRow

USERS = 12


@pytest.fixture
def rating_data(ml100k: Dataset) -> BuiltData:
    return build_rating_dataset(RatingDataConfig(limit_users=USERS), ml100k)


def test_rows_are_leak_free_and_come_from_the_training_log(
    rating_data: BuiltData, ml100k: Dataset
) -> None:
    rows = cast(list[RatingRow], read_examples(rating_data.folder))
    assert len(rows) == rating_data.manifest["counts"]["rows"] == 2 * USERS
    held_out = {(c.user_id, c.target) for s in ("valid", "test") for c in load_cases(ml100k, s)}
    log = training_log(ml100k, "valid")
    by_user = {str(u): g for u, g in log.groupby("user_id")}
    infos = item_infos(ml100k)
    for row in rows:
        user_log = by_user[row["user_id"]]
        items = user_log["item_id"].tolist()
        assert (row["user_id"], row["item_id"]) not in held_out
        # round r: the user's r-th last training interaction, with its true rating
        pos = len(items) - row["round"]
        assert items[pos] == row["item_id"]
        assert row["timestamp"] == int(user_log["timestamp"].iloc[pos])
        assert row["rating"] == float(user_log["rating"].iloc[pos])
        # the history is the (up to 10) items just before it, oldest first
        assert row["history"] == items[max(0, pos - 10) : pos]
        assert row["item_id"] not in row["history"]
        times = user_log.set_index("item_id")["timestamp"]
        assert all(times[h] <= row["timestamp"] for h in row["history"])
        history = [
            RatedItem(infos[h], float(user_log.set_index("item_id")["rating"][h]))
            for h in row["history"]
        ]
        assert row["prompt"] == render_rating_messages(history, infos[row["item_id"]])
        user_text = row["prompt"][1]["content"]
        assert f"Target item: {describe_item(infos[row['item_id']])}" in user_text
        assert user_text.index("Target item") > max(
            user_text.index(describe_item(infos[h])) for h in row["history"]
        )


def test_cold_start_completions_are_valid_and_earn_full_rewards(rating_data: BuiltData) -> None:
    rows = cast(list[RatingRow], read_examples(rating_data.folder))
    texts = [r["completion"][0]["content"] for r in rows]
    ratings = [r["rating"] for r in rows]
    for text, true in zip(texts, ratings, strict=True):
        parsed = parse_rating(text)
        assert parsed.valid, parsed.reason
        assert parsed.rating == true
    assert rating_format_reward(texts) == [1.0] * len(rows)
    assert rating_reward(texts, rating=ratings) == [1.0] * len(rows)


def test_the_item_mean_is_other_users_ratings_only(rating_data: BuiltData, ml100k: Dataset) -> None:
    log = training_log(ml100k, "valid")
    for row in cast(list[RatingRow], read_examples(rating_data.folder)):
        others = log[(log["item_id"] == row["item_id"]) & (log["user_id"] != row["user_id"])]
        stated = re.search(
            r"Other users rate it ([\d.]+)/5 on average \((\d+) rating",
            row["completion"][0]["content"],
        )
        if others.empty:
            assert stated is None
            continue
        assert stated is not None
        assert stated.group(1) == f"{others['rating'].mean():.1f}"
        assert int(stated.group(2)) == len(others)


def test_facts_name_liked_and_disliked_genres() -> None:
    def rated(genres: str, rating: float) -> RatedItem:
        return RatedItem(ItemInfo(genres, genres, "1990", genres), rating)

    history = [
        rated("Drama", 5),
        rated("Drama|Romance", 4),
        rated("Horror", 1),
        rated("Horror|Comedy", 2),
        rated("Comedy", 4),
        rated("unknown", 3),
    ]
    facts = completion_facts(history, item_mean=3.5, item_count=7)
    assert facts.user_mean == pytest.approx(19 / 6)
    assert facts.liked == ("Drama", "Romance")  # Drama 4.5 over 2 items, Romance 4.0
    assert facts.disliked == ("Horror",)  # Horror 1.5; Comedy 3.0 is neither
    with pytest.raises(ValueError, match="history"):
        completion_facts([], None, 0)


def test_the_dataset_is_versioned_deterministic_and_idempotent(
    rating_data: BuiltData, ml100k: Dataset, r2rec_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = json.loads((rating_data.folder / "manifest.json").read_text())
    assert manifest["task"] == "rating" and manifest["seed"] is None
    assert manifest["config"]["limit_users"] == USERS
    assert rating_data.folder.name == "ml-100k-rating-valid-t2-u12"
    again = build_rating_dataset(RatingDataConfig(limit_users=USERS), ml100k)
    assert again.skipped and again.manifest["sha256"] == manifest["sha256"]
    monkeypatch.setenv("R2REC_HOME", str(r2rec_home.parent / "elsewhere"))
    fresh = build_rating_dataset(RatingDataConfig(limit_users=USERS), ml100k)
    assert not fresh.skipped and fresh.manifest["sha256"] == manifest["sha256"]
    other = build_rating_dataset(RatingDataConfig(limit_users=USERS, history_size=5), ml100k)
    assert other.manifest["sha256"] != manifest["sha256"]


def test_bad_rating_data_config_is_named() -> None:
    with pytest.raises(UserInputError, match="split"):
        RatingDataConfig(split="train")
    with pytest.raises(UserInputError, match="targets_per_user"):
        RatingDataConfig(targets_per_user=0)
    with pytest.raises(UserInputError, match="min_history"):
        RatingDataConfig(history_size=2, min_history=3)
