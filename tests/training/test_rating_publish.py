"""Publishing a rating-head run: the gate on valid MAE, the merged checkpoint reads as the
adapter did, and the service's /rate then answers with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from common.errors import UserInputError
from common.paths import published_rating_dir
from recdata import load_dataset
from service.main import create_app
from tests.service.conftest import partner_fitted, settings_for
from training.rating.head import RatingHeadConfig, _Scorer, run_rating_head, split_examples
from training.rating.publish import gate, publish_rating, valid_figures


def test_the_gate_wants_a_lower_valid_mae_than_the_partner_and_the_published() -> None:
    figures = {
        "blend_with": "mf",
        "valid_targets_sha256": "a",
        "valid_MAE": {"blend": 0.7, "mf": 0.8},
    }
    assert gate(figures, None)[0] is True
    assert gate({**figures, "valid_MAE": {"blend": 0.8, "mf": 0.8}}, None) == (
        False,
        "valid MAE 0.8000 does not beat mf's 0.8000",
    )
    old = {"run": "r0", "valid_targets_sha256": "a", "valid_MAE": {"blend": 0.69}}
    assert gate(figures, old)[0] is False
    assert gate(figures, {**old, "valid_MAE": {"blend": 0.75}})[0] is True
    assert "other valid targets" in gate(figures, {**old, "valid_targets_sha256": "b"})[1]


def test_a_folder_that_is_no_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="no rating-head adapter"):
        publish_rating(tmp_path)


@pytest.mark.slow  # a tiny LoRA run, merged and served
def test_a_published_run_reads_as_its_adapter_and_is_served(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = RatingHeadConfig(
        model_path=str(tiny_model_dir),
        out_dir=str(tmp_path / "head"),
        train_limit=3,
        eval_limit=4,
        batch_size=3,
        lr=5e-3,
    )
    run_rating_head(config)
    run = tmp_path / "head"
    figures = valid_figures(run)
    assert figures["valid_n"] == 4 and figures["base_model"] == str(tiny_model_dir)
    decision = publish_rating(run, force=True)
    assert decision["published"] is True and decision["card"]["forced"] is True
    folder = published_rating_dir()
    card = json.loads((folder / "rating-card.json").read_text())
    assert card["blend_with"] == figures["blend_with"] and card["reads"] == "template"
    assert (folder / "adapter" / "adapter_config.json").is_file()
    # the merged checkpoint gives the adapter's probabilities on the valid targets
    merged = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    scorer = _Scorer(merged, AutoTokenizer.from_pretrained(folder))
    valid = split_examples(load_dataset("ml-100k"), "valid", 4)
    saved = json.loads((run / "predictions.json").read_text())["valid"]
    got = scorer.probabilities(valid, 4)
    assert np.allclose(got, [row["head_probs"] for row in saved], atol=1e-4)
    # a second publish of the same run does not beat it: refused, the folder unchanged
    again = publish_rating(run)
    assert again["published"] is False and "does not beat" in again["reason"]
    # the service rates with it by default
    with TestClient(create_app(settings_for(tiny_model_dir))) as client:
        partner_fitted(client)
        body = client.post("/rate", json={"user_id": "2", "item_id": "1"}).json()
    assert body["basis"] == "blend" and body["model"].startswith("head@")
    assert body["baseline"] == card["blend_with"]
