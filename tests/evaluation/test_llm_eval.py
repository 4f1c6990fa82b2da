"""`r2rec eval --model llm` on the protocol's cases, in-process and through a real vLLM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.errors import UserInputError
from evaluation.llm_ranker import LLMRanker
from evaluation.runner import evaluate
from graph_store.memory import MemoryGraphStore
from reasoning.backends import make_backend
from reasoning.collaborative import CollaborativeBundle
from reasoning.recommender import RecommenderConfig
from recdata import load_dataset
from tests.factories import write_hidden_head_run


@pytest.mark.slow
def test_cli_scores_a_checkpoint_and_reports_valid_ratio(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "llm.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "r2rec",
            "eval",
            "--model",
            "llm",
            "--checkpoint",
            str(tiny_model_dir),
            "--limit",
            "4",
            "--explain",
            "--max-reasoning-tokens",
            "16",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| ValidRatio | HR@1 valid |" in done.stdout.replace(" | runtime (s) |", " |")
    result = json.loads(out.read_text())[0]
    assert result["model"] == "tiny-qwen2 (explain)" and result["metrics"]["cases"] == 4
    for column in ("grounded titles", "repeated thought", "pick agreement", "explained"):
        assert f"| {column} |" in done.stdout
    metrics = result["metrics"]  # thoughts written from the evidence (the default)
    assert metrics["ValidRatio"] == 1.0 and metrics["explained"] == 1.0
    assert metrics["grounded titles"] == 1.0 and metrics["repeated thought"] == 0.0
    assert metrics["pick agreement"] == 1.0


def test_unknown_thoughts_source_is_a_one_line_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "r2rec", "eval", "--model", "llm", "--thoughts", "teacher"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "--thoughts must be one of" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_missing_checkpoint_is_a_one_line_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "r2rec",
            "eval",
            "--model",
            "llm",
            "--checkpoint",
            str(tmp_path / "none"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "no model at" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("explain", [False, True])
def test_vllm_and_in_process_score_the_same_cases(
    tiny_model_dir: Path, vllm_server, explain: bool
) -> None:
    dataset = load_dataset("ml-100k")
    config = RecommenderConfig(max_reasoning_tokens=16, thoughts="model")
    local = LLMRanker(
        lambda: make_backend("local", model_path=str(tiny_model_dir)),
        explain,
        config,
        show_progress=False,
    )
    served = LLMRanker(
        lambda: make_backend(
            "vllm", base_url=vllm_server.base_url, model=vllm_server.model, timeout_s=120
        ),
        explain,
        config,
        show_progress=False,
    )
    a = evaluate(local, dataset, "test", limit=6)
    b = evaluate(served, dataset, "test", limit=6)
    assert a.cases_sha256 == b.cases_sha256
    assert a.metrics["cases"] == b.metrics["cases"] == 6
    if not explain:  # greedy scoring on the same weights: the same ranks
        assert a.metrics == pytest.approx(b.metrics)


def test_eval_ranks_with_a_fused_ranker_as_the_service_does(
    tiny_model_dir: Path,
    slice_bundle: tuple[CollaborativeBundle, MemoryGraphStore],
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from r2rec.cli import app
    from training.fused_publish import publish_fused

    bundle, _ = slice_bundle
    bundle.meta["dataset"] = "ml-100k"
    bundle.save(tmp_path / "bundle")
    llm = make_backend("local", model_path=str(tiny_model_dir))
    width = llm.model.config.hidden_size  # type: ignore[attr-defined]  # the head's input
    write_hidden_head_run(tmp_path / "run", width, "ml-100k", tiny_model_dir)
    publish_fused(tmp_path / "run", tmp_path / "bundle", out=tmp_path / "fused")
    out = tmp_path / "fused.json"
    args = ["eval", "--model", "llm", "--checkpoint", str(tiny_model_dir), "--limit", "4"]
    args += ["--explain", "--fused", str(tmp_path / "fused"), "--out", str(out)]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    result = json.loads(out.read_text())[0]
    assert result["model"] == "fused fused (explain)" and result["metrics"]["cases"] == 4
    metrics = result["metrics"]
    assert metrics["ValidRatio"] == 1.0 and metrics["pick agreement"] == 1.0
    # ValidRatio 1: every case was the fused ranking (the evaluator raises on LLM errors)
    wrong = CliRunner().invoke(app, [*args[:-2], "--dataset", "ml-latest-small"])
    assert isinstance(wrong.exception, UserInputError)  # `r2rec.cli.main`: one line, exit 2
    assert "was fitted for 'ml-100k', not 'ml-latest-small'" in str(wrong.exception)
