"""Publishing a rating-head run: the gate on valid MAE, the merged checkpoint reads as the
adapter did, and the service's /rate then answers with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from common.errors import UserInputError
from common.paths import published_rating_dir, runs_root
from recdata import load_dataset
from service.main import create_app
from tests.service.conftest import partner_fitted, settings_for
from training.rating.head import RatingHeadConfig, _Scorer, run_rating_head, split_examples
from training.rating.publish import gate, publish_rating, valid_figures
from training.retrain import STAGES, RetrainConfig, job_dir, run_retrain, stage_done, validate_job


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


@pytest.mark.slow  # two tiny rating-head jobs, export to publish
@pytest.mark.parametrize("init", ["sft", "base"])
def test_retrain_runs_the_rating_head_and_publishes_it(tiny_model_dir: Path, init: str) -> None:
    tiny = {"model_path": str(tiny_model_dir), "train_limit": "3", "batch_size": "3"}
    job = RetrainConfig(
        dataset="ml-100k",
        name=f"head-{init}",
        task="rating",
        init=init,
        sft_overrides=tiny,
        grpo_overrides={**tiny, "eval_limit": "4", "group_size": "4"},
        publish_force=True,  # four valid targets: the gate's verdict is noise
    )
    validate_job(job)
    record = run_retrain(job)
    assert [s for s in STAGES if stage_done(job.job, s)] == list(STAGES)
    final = str(runs_root() / f"head-{init}-head-grpo")
    assert record["published"] is True and record["run"] == final
    trained = json.loads((Path(final) / "trained.json").read_text())
    objectives = [stage["objective"] for stage in trained["stages"]]
    assert objectives == (["ce", "grpo"] if init == "sft" else ["grpo"])
    cold = stage_done(job.job, "sft") or {}
    assert ("skipped" in cold) is (init == "base")
    if init == "sft":  # the cold start was not scored: GRPO follows
        ce = runs_root() / "head-sft-head-ce"
        assert (ce / "trained.json").is_file() and not (ce / "predictions.json").exists()
    evaluated = stage_done(job.job, "evaluate") or {}
    assert [row["n"] for row in evaluated["test"]] == [4] * len(evaluated["test"])
    settings = json.loads((job_dir(job.job) / "job.json").read_text())
    assert settings["grpo"]["objective"] == "grpo" and settings["grpo"]["group_size"] == 4
    assert json.loads((published_rating_dir() / "rating-card.json").read_text())["run"] == final


def test_the_job_owns_the_heads_folders_and_objectives() -> None:
    job = RetrainConfig(task="rating", grpo_overrides={"objective": "ce"})
    with pytest.raises(UserInputError, match="set by the job"):
        validate_job(job)
