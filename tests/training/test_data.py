"""The training-data builder on real ML-100K users: traces, masking, negatives, grounding,
no leakage of held-out targets, and a deterministic, idempotent versioned dataset."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest

from common.errors import UserInputError
from common.files import stable_json
from evaluation.protocol import load_cases
from reasoning.parse import parse_ranking
from reasoning.prompt import ANSWER_PREFIX, LETTERS
from reasoning.rewards import format_reward, grounding_reward, hit_at_1_reward
from recdata.schema import Dataset
from training.data import DataConfig, RankCounts, build_dataset, shard_bases, stream_bases
from training.datasets import DatasetSpec, read_examples, write_versioned
from training.rows import RankBase, RankRow
from training.teacher import Verdict, apply_verdict, judge_rewrite


def _rows(built) -> list[RankRow]:
    return cast(list[RankRow], read_examples(built.folder))


def test_every_trace_ends_at_the_true_item(smoke_data) -> None:
    full = [r for r in _rows(smoke_data) if r["variant"] == 0]
    assert len(full) == smoke_data.manifest["counts"]["examples"] > 10
    texts = [r["completion"][0]["content"] for r in full]
    for row, text in zip(full, texts, strict=True):
        parsed = parse_ranking(text, row["candidates"])
        assert parsed.strict and parsed.complete
        assert parsed.stated_ids[0] == row["target"]
    cands = [r["candidates"] for r in full]
    assert format_reward(texts, candidates=cands) == [1.0] * len(full)
    assert hit_at_1_reward(texts, candidates=cands, target=[r["target"] for r in full]) == [
        1.0
    ] * len(full)
    # chains that reach the target become thoughts naming it; some examples have them
    assert any(r["target_reached"] for r in full)


def test_masked_variants_give_earlier_thoughts_and_hide_the_rest(smoke_data) -> None:
    rows = _rows(smoke_data)
    by_example: dict[tuple[str, int], list[RankRow]] = {}
    for row in rows:
        by_example.setdefault((row["user_id"], row["round"]), []).append(row)
    for variants in by_example.values():
        variants.sort(key=lambda r: r["variant"])
        full = variants[0]["completion"][0]["content"]
        n = len(variants[0]["thoughts"])
        assert [v["variant"] for v in variants] == list(range(n + 1))
        assert variants[0]["prompt"][-1]["role"] == "user"
        for v in variants[1:]:
            given = v["prompt"][-1]
            assert given["role"] == "assistant"
            assert v["prompt"][:-1] == variants[0]["prompt"]
            assert given["content"] + v["completion"][0]["content"] == full
            assert given["content"].count("\n") == v["variant"]
        assert variants[-1]["completion"][0]["content"].startswith(ANSWER_PREFIX)


def test_negatives_were_never_seen_by_the_user(smoke_data, ml100k: Dataset) -> None:
    seen = ml100k.interactions.groupby("user_id")["item_id"].apply(set).to_dict()
    for row in _rows(smoke_data):
        negatives = [c for c in row["candidates"] if c != row["target"]]
        assert len(negatives) == 19 == len(set(negatives))
        assert not set(negatives) & seen[row["user_id"]]
        assert row["target"] in seen[row["user_id"]]


def test_thoughts_only_quote_titles_from_the_evidence(smoke_data) -> None:
    full = [r for r in _rows(smoke_data) if r["variant"] == 0]
    rewards = grounding_reward(
        [r["completion"][0]["content"] for r in full],
        evidence_titles=[r["evidence_titles"] for r in full],
    )
    assert rewards == [1.0] * len(full)
    for row in full:
        prompt = row["prompt"][1]["content"]
        for title in row["evidence_titles"]:
            assert f'"{title}"' in prompt


def test_held_out_targets_are_never_training_targets(smoke_data, ml100k: Dataset) -> None:
    held_out = {(c.user_id, c.target) for s in ("valid", "test") for c in load_cases(ml100k, s)}
    rows = _rows(smoke_data)
    assert not {(r["user_id"], r["target"]) for r in rows} & held_out
    for row in rows:  # the history shown precedes the target: the target is not in it
        history = row["prompt"][1]["content"].split("Evidence chains:")[0]
        target_line = next(
            line
            for line in row["prompt"][1]["content"].splitlines()
            if line.startswith(f"({LETTERS[row['candidates'].index(row['target'])]})")
        )
        assert target_line[4:] not in history


def test_the_dataset_is_versioned_deterministic_and_idempotent(
    smoke_data,
    ml100k: Dataset,
    r2rec_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifest = json.loads((smoke_data.folder / "manifest.json").read_text())
    assert manifest["sha256"] == smoke_data.manifest["sha256"]
    assert manifest["seed"] == 0 and manifest["config"]["limit_users"] == 12
    again = build_dataset(DataConfig(limit_users=12), ml100k)
    assert again.skipped and again.manifest["sha256"] == manifest["sha256"]
    monkeypatch.setenv("R2REC_HOME", str(r2rec_home.parent / "other-home"))
    elsewhere = build_dataset(DataConfig(limit_users=12), ml100k)
    assert not elsewhere.skipped and elsewhere.manifest["sha256"] == manifest["sha256"]
    other_seed = build_dataset(replace(DataConfig(limit_users=12), seed=1), ml100k)
    assert other_seed.manifest["sha256"] != manifest["sha256"]
    unmasked = build_dataset(DataConfig(limit_users=12, masked=False), ml100k)
    assert unmasked.manifest["counts"]["rows"] == manifest["counts"]["examples"]


def test_rows_stream_to_the_file_and_a_failed_build_keeps_the_old_one(
    smoke_data, ml100k: Dataset
) -> None:
    """`write_versioned` reads the rows one at a time (a generator); one that fails
    half-way, or yields nothing, leaves the dataset that was there (or none) and no
    temporary."""
    folder, manifest = smoke_data.folder, dict(smoke_data.manifest)
    rows = read_examples(folder)
    spec = DatasetSpec("rank", 99, {"changed": True}, 0, RankCounts)

    def failing() -> Iterator[RankRow]:
        yield cast(RankRow, rows[0])
        raise RuntimeError("a worker died")

    for make, error in ((failing, "a worker died"), (lambda: iter(()), "no training examples")):
        with pytest.raises((RuntimeError, UserInputError), match=error):
            write_versioned(folder, spec, ml100k, make, force=True)
        assert json.loads((folder / "manifest.json").read_text()) == manifest
        assert read_examples(folder) == rows
        assert sorted(p.name for p in folder.iterdir()) == ["examples.jsonl", "manifest.json"]
    fresh = folder.parent / "never-built"
    with pytest.raises(UserInputError, match="no training examples"):
        write_versioned(fresh, spec, ml100k, lambda: iter(()))
    assert not fresh.exists()  # a first build that failed leaves no empty folder
    streamed = write_versioned(folder, spec, ml100k, lambda: (cast(RankRow, r) for r in rows))
    assert streamed.manifest["sha256"] == manifest["sha256"]  # the same bytes, streamed
    assert streamed.manifest["counts"] == manifest["counts"]


def test_streamed_bases_merge_the_rounds_as_the_held_build_sorts_them(
    ml100k: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three rounds spill to temporary files and merge by (user, round): the same
    examples, in the same order, as building them all and sorting; no file is left."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    config = DataConfig(limit_users=10, targets_per_user=3)
    held = sorted(shard_bases(config, ml100k), key=lambda b: (b["user_id"], b["round"]))
    streamed = list(stream_bases(config, ml100k))
    assert stable_json(streamed) == stable_json(held)  # what the file gets, byte for byte
    assert {b["round"] for b in held} == {1, 2, 3}
    assert list(tmp_path.iterdir()) == []


def test_a_tampered_dataset_is_refused(smoke_data) -> None:
    path = smoke_data.examples_path
    path.write_text(path.read_text().replace('"round":1', '"round":9', 1))
    with pytest.raises(UserInputError, match="sha256"):
        read_examples(smoke_data.folder)


def test_bad_config_is_named() -> None:
    with pytest.raises(UserInputError, match="split"):
        DataConfig(split="train")
    with pytest.raises(UserInputError, match="limit_users"):
        DataConfig(limit_users=0)


EXAMPLE = cast(
    RankBase,
    {
        "target": "b",
        "candidates": ["a", "b", "c"],
        "thoughts": ["t"],
        "ranked_ids": ["b", "a", "c"],
        "source": "graph",
    },
)  # only the fields the teacher reads


@pytest.mark.parametrize(
    ("text", "kept", "reason"),
    [
        ('1. You liked "X", so "Y" fits.\nAnswer: B > A > C', True, "ok"),
        ("1. prose\nAnswer: A > B > C", False, "not ranked first"),
        ("1. prose\nAnswer: B > B", False, "invalid answer"),
        ("Answer: B > A > C", False, "no numbered thoughts"),
        ("1. prose without an answer", False, "invalid answer"),
    ],
)
def test_teacher_rewrites_are_kept_only_when_the_target_stays_first(
    text: str, kept: bool, reason: str
) -> None:
    verdict = judge_rewrite(text, EXAMPLE)
    assert verdict.kept is kept and reason in verdict.reason
    result = apply_verdict(EXAMPLE, verdict)
    assert (result["source"] == "teacher") is kept
    assert result["thoughts"] == (list(verdict.thoughts) if kept else ["t"])
    assert apply_verdict(EXAMPLE, Verdict(False, "x")) is EXAMPLE
