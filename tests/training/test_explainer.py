"""training.explainer: a tiny run end to end, published beside a fused ranker, served.

The tiny random model cannot learn to write thoughts in one step, so what is checked here
is the path: rows (progressively masked), the trained folders, the publish, and the
service's honest fallback when the published explainer writes nonsense.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest

from baselines.features import rowset_cases
from common.errors import UserInputError
from graph_store.memory import MemoryGraphStore
from reasoning.backends import make_backend
from reasoning.collaborative import CollaborativeBundle
from reasoning.compact import PromptShape
from reasoning.evidence import evidence_thoughts
from reasoning.explainer import (
    evidence_from_column,
    explainer_reward,
    explainer_target,
    render_thoughts,
)
from reasoning.fused import FusedRanker
from reasoning.recommender import Recommender, RecommenderConfig
from recdata.schema import Dataset
from training.explainer import (
    ExplainerConfig,
    ExplainerGRPOConfig,
    explainer_rows,
    grpo_explainer,
    grpo_rows,
    train_explainer,
)
from training.fused_publish import publish_explainer


def test_rows_are_masked_variants_of_each_case(ml100k_slice: Dataset, tmp_path: Path) -> None:
    config = ExplainerConfig(dataset=ml100k_slice.name, out_dir=str(tmp_path), max_cases=5)
    rows = explainer_rows(config, ml100k_slice)
    full = [r for r in rows if r["variant"] == 0]
    assert len(full) == 5
    for row in rows:
        given = row["prompt"][-1]["content"] if row["variant"] else ""
        assert row["prompt"][0]["role"] == "system"
        assert given.count("\n") == row["variant"]  # k thoughts handed over, one per line
    unmasked = explainer_rows(replace(config, masked=False), ml100k_slice)
    assert unmasked == full


def test_out_dir_is_required() -> None:
    with pytest.raises(UserInputError, match="out_dir"):
        ExplainerConfig()


def test_tiny_run_publish_and_serve(
    tiny_model_dir: Path,
    ml100k_slice: Dataset,
    slice_bundle: tuple[CollaborativeBundle, MemoryGraphStore],
    tmp_path: Path,
) -> None:
    config = ExplainerConfig(
        dataset="ml-100k",
        limit_users=6,
        max_cases=4,
        out_dir=str(tmp_path / "run"),
        base_model=str(tiny_model_dir),
        batch_size=2,
        max_steps=2,
        max_length=4096,  # the tiny byte-level tokenizer spends about 1 token per byte
        device="cpu",
        validate_cases=2,
    )
    summary = train_explainer(config)
    assert summary["valid"]["cases"] == 2 and summary["valid"]["served"] == 0.0  # random
    assert summary["cases"] == 4 and summary["rows"] >= 4
    assert summary["rows_seen"] == 4 and summary["train_loss"] > 0
    assert (tmp_path / "run" / "model" / "config.json").is_file()
    assert (tmp_path / "run" / "adapter").is_dir()
    assert train_explainer(config) == summary  # a finished run is not trained again

    bundle, store = slice_bundle
    FusedRanker(bundle, None, PromptShape(), {"dataset": "x"}).save(tmp_path / "fused")
    with pytest.raises(UserInputError, match="no trained explainer"):
        publish_explainer(tmp_path, tmp_path / "fused")
    folder = publish_explainer(tmp_path / "run", tmp_path / "fused")
    assert json.loads((folder / "explainer.json").read_text())["cases"] == 4
    fused = FusedRanker.load(tmp_path / "fused")
    assert fused.explainer == folder

    explainer = make_backend("local", model_path=str(fused.explainer))
    rec = Recommender(
        store,
        object(),  # type: ignore[arg-type]  # no head: the ranker never asks it
        RecommenderConfig(thoughts="model"),
        fused=fused,
        explainer=explainer,
    )
    case = rowset_cases(ml100k_slice, "test")[0]
    got = asyncio.run(rec.recommend(case.user_id, case.candidates, explain=True))
    prep = asyncio.run(rec.prepare(case.user_id, case.candidates))
    order = [next(c for c in prep.candidates if c.item_id == i.item_id) for i in got.items]
    # the random tiny model writes nothing that passes: the evidence writes the thoughts
    assert rec.explainer_counts == {"served": 0, "rejected": 1, "failed": 0}
    assert got.thoughts == evidence_thoughts(prep.history, prep.chains, order)
    assert not got.fallback
    asyncio.run(explainer.aclose())


def test_grpo_rows_carry_what_the_reward_reads(ml100k_slice: Dataset, tmp_path: Path) -> None:
    config = ExplainerGRPOConfig(
        init_run=str(tmp_path), out_dir=str(tmp_path / "g"), dataset="ml-100k", max_cases=3
    )
    rows = grpo_rows(config, ml100k_slice)
    assert len(rows) == 3
    for row in rows:
        history, chains, ranking = evidence_from_column(row["evidence"])
        prompt = row["prompt"][1]["content"]
        assert f'(A) "{ranking[0].title}' in prompt  # the ranking's first item leads
        good = render_thoughts(explainer_target(history, chains, ranking))
        assert explainer_reward([good], evidence=[row["evidence"]]) == [1.0]


def test_tiny_grpo_run(tiny_model_dir: Path, tmp_path: Path) -> None:
    sft = ExplainerConfig(
        dataset="ml-100k",
        limit_users=4,
        max_cases=2,
        masked=False,
        out_dir=str(tmp_path / "sft"),
        base_model=str(tiny_model_dir),
        batch_size=2,
        max_steps=1,
        max_length=4096,
        device="cpu",
        validate_cases=0,
    )
    train_explainer(sft)
    config = ExplainerGRPOConfig(
        init_run=sft.out_dir,
        out_dir=str(tmp_path / "grpo"),
        dataset="ml-100k",
        max_cases=2,
        num_generations=2,
        max_completion_length=8,
        batch_size=2,
        max_steps=1,
        device="cpu",
        validate_cases=0,
    )
    summary = grpo_explainer(config)
    assert summary["steps"] == 1 and summary["prompts"] == 2
    assert len(summary["reward_by_step"]) == 1 and 0 <= summary["reward_by_step"][0] <= 1
    assert (tmp_path / "grpo" / "model" / "config.json").is_file()
    with pytest.raises(UserInputError, match="multiple"):
        ExplainerGRPOConfig(init_run="a", out_dir="b", batch_size=3, num_generations=2)
