"""training.listwise: prompt/letter bookkeeping, and a seconds-long run on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from baselines.features import FEATURE_MODELS, FeatureSet, feature_path
from common.errors import UserInputError
from evaluation.ranker import Case
from recdata import load_dataset
from training.compact_prompt import item_lookup, render_compact, shown_position
from training.listwise import ListwiseConfig, choose_alpha, report_saved, run_listwise


def _cases(n: int, seed: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    ids = [str(i) for i in range(1, 400)]
    out = []
    for u in range(n):
        picked = [ids[i] for i in rng.choice(len(ids), size=26, replace=False)]
        out.append(Case(f"u{seed}-{u}", picked[6], tuple(picked[:6]), tuple(picked[6:])[::-1]))
    return out


def _write_features(folder: Path) -> None:
    rng = np.random.default_rng(0)
    for seed, rowset in enumerate(("train3", "valid", "test")):
        cases = _cases(6, seed)
        scores = rng.normal(size=(len(cases), 20, len(FEATURE_MODELS)))
        for i, case in enumerate(cases):  # sasrec mildly informative
            scores[i, case.target_index, 0] += 1.0
        FeatureSet("ml-100k", rowset, FEATURE_MODELS, cases, scores).save(
            feature_path(folder, rowset)
        )


def test_shuffled_prompt_letters_point_at_the_right_candidates() -> None:
    config = ListwiseConfig()
    lookup = item_lookup(load_dataset("ml-100k").items, config)
    case = _cases(1, 5)[0]
    order = np.random.default_rng(1).permutation(20)
    user = render_compact(case, order, lookup, config)[1]["content"]
    lines = [line for line in user.splitlines() if line.startswith("(")]
    letter = "ABCDEFGHIJKLMNOPQRST"[shown_position(order, case.target_index)]
    title = lookup[case.target].title
    assert any(line.startswith(f"({letter}) ") and title[:10] in line for line in lines)
    assert len(lines) == 20


def test_choose_alpha_prefers_the_helpful_multiple() -> None:
    target = np.zeros(50, dtype=np.int64)
    base = np.zeros((50, 20))
    helpful = np.zeros((50, 20))
    helpful[:, 0] = 1.0
    chosen, trials = choose_alpha(base, helpful, target, learned=1.0, grid=(0.0, 1.0, 2.0))
    assert chosen == 2.0 and len(trials) == 3
    chosen, _ = choose_alpha(base, -helpful, target, learned=1.0, grid=(0.0, 1.0, 2.0))
    assert chosen == 0.0


def test_valid_and_test_are_never_trained_on() -> None:
    with pytest.raises(UserInputError):
        ListwiseConfig(train_rowsets=("train3", "valid"))


def test_tiny_run_end_to_end(tmp_path: Path, tiny_model_dir: Path) -> None:
    _write_features(tmp_path / "features")
    config = ListwiseConfig(
        model_path=str(tiny_model_dir),
        features_dir=str(tmp_path / "features"),
        out_dir=str(tmp_path / "run"),
        batch_size=3,
        eval_batch_size=4,
        log_every=1,
        threads=1,
    )
    summary = run_listwise(config)
    assert summary["train"]["examples_seen"] == 6 and summary["train"]["steps"] == 2
    assert np.isfinite(summary["learned_alpha"])
    rows = json.loads((tmp_path / "run" / "r2rec.json").read_text())
    assert [r["model"] for r in rows][:2] == ["sasrec", "combiner"]
    for row in rows:
        assert {"HR@1", "HR@5", "NDCG@10", "n", "p_vs_sasrec", "p_vs_combiner"} <= set(row)
        assert row["n"] == 6
    assert (tmp_path / "run" / "adapter" / "adapter_config.json").is_file()
    assert np.load(tmp_path / "run" / "logits_test.npy").shape == (6, 20)

    # a run stopped while scoring test: the report uses the first rows that were scored
    run = tmp_path / "run"
    full = np.load(run / "logits_test.npy")
    (run / "logits_test.npy").unlink()
    np.save(run / "partial_test.npy", full[:3])
    again = report_saved(config)
    assert again["test_partial"] and all(r["n"] == 3 for r in again["rows"])
    assert again["chosen_alpha"] == summary["chosen_alpha"]
