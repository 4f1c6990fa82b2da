"""`r2rec retrain --rank-recipe fused`: features, head, bundle and publish in one job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.errors import UserInputError
from common.paths import published_fused_dir
from reasoning.fused import FusedRanker
from tests.factories import TINY_FEATURE_CONFIGS
from training.retrain import STAGES, RetrainConfig, job_dir, run_retrain, stage_done, validate_job


@pytest.mark.slow  # a tiny fused job on 40 ML-100K users, export to publish
def test_retrain_runs_the_fused_recipe_and_publishes_it(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    table = tmp_path / "baselines.json"
    table.write_text(
        json.dumps([{"model": k, "config": v} for k, v in TINY_FEATURE_CONFIGS.items()])
    )
    head = {
        "model_path": str(tiny_model_dir),
        "layers": "1",
        "pca_grid": "0",
        "item_layers": "1,2",
        "llm_sasrec_max_epochs": "5",
    }
    job = RetrainConfig(
        dataset="ml-100k",
        name="fused",
        limit_users=40,
        rank_recipe="fused",
        feature_results=table,
        sft_overrides={**head, "l2_grid": "0.1", "dtype": "float32"},
        grpo_overrides={  # the explainer: one step of the tiny model on 2 cases
            "base_model": str(tiny_model_dir),
            "max_cases": 2,
            "max_steps": 1,
            "batch_size": 2,
            "max_length": 4096,
            "time_limit_minutes": None,
            "validate_cases": 2,
        },
        publish_force=True,  # 40 valid cases: the gate's verdict is noise
    )
    validate_job(job)
    record = run_retrain(job)
    assert [s for s in STAGES if stage_done(job.job, s)] == list(STAGES)
    assert record["published"] is True and record["manifest"]["dataset"] == "ml-100k"
    explainer = stage_done(job.job, "grpo") or {}
    assert explainer["cases"] == 2 and explainer["rows_seen"] == 2
    assert explainer["valid"]["cases"] == 2  # held-out cases scored after training
    rows = (stage_done(job.job, "evaluate") or {})["rows"]
    assert {row["n"] for row in rows} == {40} and rows[0]["model"] == "sasrec"
    fused = FusedRanker.load(published_fused_dir())
    assert fused.head is not None and fused.head.layer == 1
    summary = json.loads((Path(fused.manifest["run"]) / "summary.json").read_text())
    assert fused.manifest["variant"] == min(
        summary["variants"], key=lambda v: summary["variants"][v]["select_nll"]["fused"]
    )
    assert {"item-vector features", "llm-sasrec features"} <= set(summary["variants"])
    # the LLM-reading SASRec was fitted on the snapshot's logs with the job's architecture
    assert summary["items"]["llm_sasrec"]["config"]["hidden"] == 16
    assert fused.bundle.meta["fit_log"] == "ml-100k" and len(fused.bundle.user_ids) == 40
    settings = json.loads((job_dir(job.job) / "job.json").read_text())
    assert settings["sft"]["layers"] == [1] and settings["grpo"]["max_steps"] == 1
    # the random tiny explainer passes no held-out case: it is not published
    assert record["explainer"] == "not published: served on 0 of 2 held-out cases"
    assert fused.explainer is None
    # the model card carries each stage's wall time, as the job's stage records do
    assert list(fused.manifest["stage_seconds"]) == list(STAGES[:-1])
    card = (published_fused_dir() / "README.md").read_text()
    assert "| sft |" in card and "total before publish" in card
    assert run_retrain(job)["published"] is True  # every stage done: nothing runs again


def test_the_fused_job_owns_its_folders_and_is_for_ranking() -> None:
    with pytest.raises(UserInputError, match="set by the job"):
        validate_job(RetrainConfig(rank_recipe="fused", sft_overrides={"out_dir": "x"}))
    with pytest.raises(UserInputError, match="explainer settings"):
        validate_job(RetrainConfig(rank_recipe="fused", grpo_overrides={"dataset": "x"}))
    with pytest.raises(UserInputError, match="rank_recipe=fused is for task=rank"):
        validate_job(RetrainConfig(rank_recipe="fused", task="rating"))
    with pytest.raises(UserInputError, match="rank_recipe must be"):
        validate_job(RetrainConfig(rank_recipe="other"))


def test_a_missing_base_model_fails_the_fused_job_before_its_first_stage(tmp_path: Path) -> None:
    missing = tmp_path / "no-model"
    job = RetrainConfig(name="nobase", rank_recipe="fused", sft_overrides={"model_path": missing})
    with pytest.raises(UserInputError, match=f"no model at {missing}: name a model folder"):
        run_retrain(job)
    assert not [s for s in STAGES if stage_done(job.job, s)]  # not even the export ran
