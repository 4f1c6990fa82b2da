"""The rating head: its examples carry only out-of-sample facts, the loss reads the five
rating tokens at <rate>, and a whole (tiny) run writes its table."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from common.errors import UserInputError
from recdata import load_dataset
from recdata.schema import Dataset
from training.rating.head import (
    RatingHeadConfig,
    run_rating_head,
    soft_target,
    training_examples,
)
from training.rating.head_report import choose_blend


def test_soft_target_and_blend_choice() -> None:
    assert soft_target(4).tolist() == [0, 0, 0, 1, 0]
    assert soft_target(0.5).tolist() == [1, 0, 0, 0, 0]  # clipped to the scale
    truth = np.array([1.0, 5.0, 3.0, 4.0])
    assert choose_blend(truth, np.full(4, 3.0), truth) == 1.0  # a perfect model wins
    assert choose_blend(np.full(4, 9.0), truth, truth) == 0.0  # a useless one is left out


def test_an_example_does_not_depend_on_its_own_rating() -> None:
    data = load_dataset("ml-100k")
    config = RatingHeadConfig(train_limit=3)
    before = training_examples(data, config)
    first = before[0]
    inter = data.interactions.copy()
    pair = (inter["user_id"] == first.user_id) & (inter["item_id"] == first.item_id)
    inter.loc[pair, "rating"] = 1.0 if first.rating != 1.0 else 5.0
    changed = Dataset.from_frames(data.name, inter, data.items, data.meta)
    after = training_examples(changed, config)
    assert after[0].messages == first.messages and after[0].rating != first.rating
    assert "Facts from earlier ratings" in first.messages[1]["content"]
    assert first.messages[-1]["content"].endswith("<rate>")


@pytest.mark.slow  # a tiny LoRA run: training, scoring, blending
def test_a_tiny_run_writes_the_table(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = RatingHeadConfig(
        model_path=str(tiny_model_dir),
        out_dir=str(tmp_path / "head"),
        train_limit=6,
        eval_limit=5,
        batch_size=3,
    )
    summary = run_rating_head(config)
    assert summary["training"]["examples_seen"] == 6 and summary["training"]["steps"] == 2
    assert summary["training"]["tokens_per_example"] > 100
    names = [row["model"] for row in summary["test"]]
    assert names[:3] == ["item_mean", "bias", "mf"] and "blend" in names[-1]
    assert all(row["n"] == 5 for row in summary["test"])
    assert json.loads((tmp_path / "head" / "summary.json").read_text())["test"] == summary["test"]
    assert "| rating head alone" in (tmp_path / "head" / "rating-head.md").read_text()
    assert (tmp_path / "head" / "adapter" / "adapter_config.json").is_file()
    predictions = json.loads((tmp_path / "head" / "predictions.json").read_text())
    assert [len(predictions[s]) for s in ("valid", "test")] == [5, 5]
    row = predictions["test"][0]
    assert {"head", "mf", "rating"} <= set(row) and abs(sum(row["head_probs"]) - 1) < 1e-4
    # a resumed run picks up where the first stopped: the second epoch, counts added
    first = tmp_path / "head"
    resumed = run_rating_head(replace(config, epochs=2, start_from=str(first)))["training"]
    assert (resumed["steps"], resumed["examples_seen"], len(resumed["stages"])) == (4, 12, 2)
    assert resumed["stages"][0] == summary["training"]["stages"][0]
    # GRPO continues from that run into its own folder, reporting its signal
    grpo = replace(
        config, epochs=3, start_from=str(first), objective="grpo", out_dir=str(tmp_path / "grpo")
    )
    stage = run_rating_head(grpo)["training"]["stages"][-1]
    assert stage["objective"] == "grpo" and stage["examples"] == 6 and stage["group_size"] == 8
    assert 0 <= stage["groups_with_signal"] <= 1 and 0 <= stage["valid_format"] <= 1
    assert (tmp_path / "grpo" / "adapter" / "adapter_config.json").is_file()


def test_start_from_needs_an_earlier_run(tmp_path: Path) -> None:
    config = RatingHeadConfig(start_from=str(tmp_path / "none"), eval_limit=2)
    with pytest.raises(UserInputError, match=r"no trained\.json"):
        run_rating_head(config)
