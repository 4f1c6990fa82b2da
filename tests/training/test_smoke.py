"""Smoke-scale end-to-end training on a tiny model and a handful of ML-100K users:
the retrain job (export -> data -> SFT -> GRPO -> evaluate -> publish) crashes in GRPO,
resumes without redoing finished stages, and publishes a servable model; the SFT
prompt rendering is the serving backend's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.paths import published_dir
from reasoning.backends import make_backend
from reasoning.backends.transformers_backend import TransformersBackend
from training import grpo as grpo_module
from training.datasets import read_examples
from training.publish import current, publish
from training.retrain import (
    STAGES,
    UNPUBLISHED_RATING,
    RetrainConfig,
    job_dir,
    run_retrain,
    stage_done,
    validate_job,
)
from training.run_folder import is_complete, run_dir
from training.sft import text_pairs

TINY = {
    "max_length": "3072",
    "batch_size": "1",
    "save_steps": "1",
    "logging_steps": "1",
    "eval_limit": "3",
    "device": "cpu",
}


def _job(tiny_model_dir: Path) -> RetrainConfig:
    return RetrainConfig(
        dataset="ml-100k",
        name="smoke",
        limit_users=4,
        targets_per_user=1,
        sft_overrides={**TINY, "base_model": str(tiny_model_dir), "max_steps": "2"},
        grpo_overrides={
            **TINY,
            "max_steps": "1",
            "batch_size": "2",
            "num_generations": "2",
            "max_completion_length": "12",
            "eval_splits": "valid",
        },
    )


@pytest.mark.slow  # a whole retrain job: data, SFT, GRPO, evaluation, publish
def test_retrain_resumes_after_a_crash_and_publishes(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, r2rec_home: Path
) -> None:
    job = _job(tiny_model_dir)
    assert job_dir("smoke").is_relative_to(r2rec_home)

    def crash(config):
        raise RuntimeError("simulated crash in GRPO")

    with monkeypatch.context() as patch, pytest.raises(RuntimeError, match="simulated crash"):
        patch.setattr(grpo_module, "run_grpo", crash)
        run_retrain(job)
    assert [s for s in STAGES if stage_done("smoke", s)] == ["export", "data", "sft"]
    trained = json.loads((run_dir("smoke-sft") / "trained.json").read_text())
    assert trained["global_step"] == 2
    assert (run_dir("smoke-sft") / "adapter" / "adapter_config.json").is_file()
    sft_mtime = (run_dir("smoke-sft") / "model" / "config.json").stat().st_mtime_ns

    record = run_retrain(job)
    assert [s for s in STAGES if stage_done("smoke", s)] == list(STAGES)
    assert (run_dir("smoke-sft") / "model" / "config.json").stat().st_mtime_ns == sft_mtime
    assert "sft already done, skipped" in (job_dir("smoke") / "retrain.log").read_text()
    assert is_complete("smoke-grpo")
    grpo_stats = json.loads((run_dir("smoke-grpo") / "trained.json").read_text())
    assert grpo_stats["global_step"] == 1 and grpo_stats["start_model"].endswith("smoke-sft/model")
    metrics = json.loads((run_dir("smoke-grpo") / "metrics.json").read_text())
    assert metrics["valid"]["metrics"]["cases"] == 3
    sft_metrics = json.loads((run_dir("smoke-sft") / "metrics.json").read_text())
    assert set(sft_metrics) == {"valid", "test"}
    assert "| valid | 3 |" in (run_dir("smoke-sft") / "README.md").read_text()

    # published only if it beats the graph scorer on the same validation cases
    assert record["published"] is (record["valid_hr1"] > record["classical_hr1"])
    if not record["published"]:
        assert "graph scorer" in record["reason"] and current() is None
        assert publish("smoke-grpo", force=True).published  # to check that it serves
    assert current()["run"] == "smoke-grpo"  # type: ignore[index]
    again = publish("smoke-grpo")  # the same run does not beat itself
    assert not again.published and "does not beat" in again.reason
    # a second run of the finished job does nothing
    assert run_retrain(job) == record
    assert job_dir("smoke").is_relative_to(r2rec_home)  # nothing escaped the test's home

    # the published folder is a full model the in-process backend serves
    backend = make_backend("local", model_path=str(published_dir()))
    scores = (
        await_all(
            backend.score_choices(
                [[{"role": "user", "content": "Pick one."}]], "Answer:", [" A", " B"]
            )
        )
    )[0]
    assert set(scores) == {" A", " B"}


def await_all(coro):
    import asyncio

    return asyncio.run(coro)


def test_sft_prompts_are_rendered_like_the_serving_backend(
    tiny_model_dir: Path, smoke_data
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = read_examples(smoke_data.folder)[:6]
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    pairs = text_pairs(rows, model, tokenizer, "tiny")
    served = make_backend("local", model_path=str(tiny_model_dir))
    assert isinstance(served, TransformersBackend)
    for row, pair in zip(rows, pairs, strict=True):
        assert pair["prompt"] == served.render(row["prompt"])
        assert pair["completion"] == row["completion"][0]["content"] + tokenizer.eos_token
        if row["variant"]:  # the given thoughts stay open in the assistant turn
            assert pair["prompt"].endswith(row["prompt"][-1]["content"])


@pytest.mark.slow  # two rating jobs: data, (cold start,) GRPO, evaluation
@pytest.mark.parametrize(("init", "stages_run"), [("base", False), ("sft", True)])
def test_retrain_runs_reczero_and_recone(
    tiny_model_dir: Path, r2rec_home: Path, init: str, stages_run: bool
) -> None:
    name = f"rating-{init}"
    job = RetrainConfig(
        dataset="ml-100k",
        name=name,
        task="rating",
        rating_recipe="generate",
        init=init,
        limit_users=4,
        targets_per_user=1,
        sft_overrides={**TINY, "base_model": str(tiny_model_dir), "max_steps": "1"},
        grpo_overrides={
            **TINY,
            "base_model": str(tiny_model_dir),
            "max_steps": "1",
            "batch_size": "2",
            "num_generations": "2",
            "max_completion_length": "12",
            "eval_splits": "valid",
        },
    )
    validate_job(job)
    record = run_retrain(job)
    assert [s for s in STAGES if stage_done(name, s)] == list(STAGES)
    assert record == {
        "published": False,
        "run": f"{name}-grpo",
        "reason": UNPUBLISHED_RATING,
        **{k: record[k] for k in ("stage", "seconds", "finished_unix")},
    }
    assert ("skipped" in (stage_done(name, "sft") or {})) is not stages_run
    trained = json.loads((run_dir(f"{name}-grpo") / "trained.json").read_text())
    start = trained["start_model"]
    assert 0.0 <= trained["groups_with_signal"] <= 1.0 and trained["completions_clipped"] >= 0
    assert start.endswith(f"{name}-sft/model") if stages_run else start == str(tiny_model_dir)
    metrics = json.loads((run_dir(f"{name}-grpo") / "metrics.json").read_text())
    assert metrics["valid"]["model"] == f"{name}-grpo" and metrics["valid"]["metrics"]["cases"] == 3
    assert current() is None  # nothing published
