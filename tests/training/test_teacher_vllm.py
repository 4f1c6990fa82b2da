"""The optional teacher against a real vLLM server (a tiny random model): the keep/reject
logic decides every rewrite, and only rewrites that keep the target first replace a trace."""

from __future__ import annotations

from typing import cast

from reasoning.parse import parse_ranking
from reasoning.prompt import render_completion
from recdata.schema import Dataset
from tests.harness.vllm import VLLMServer
from training.data import DataConfig, build_dataset
from training.datasets import read_examples
from training.rows import RankRow
from training.teacher import TeacherConfig, Verdict, make_teacher_rewriter


def test_teacher_keeps_only_rewrites_that_still_rank_the_target_first(
    vllm_server: VLLMServer, ml100k: Dataset
) -> None:
    verdicts: list[Verdict] = []
    config = TeacherConfig(base_url=vllm_server.base_url, model=vllm_server.model, max_tokens=48)
    rewrite = make_teacher_rewriter(config, verdicts)
    data_config = DataConfig(limit_users=3, targets_per_user=1, teacher_url=vllm_server.base_url)
    built = build_dataset(data_config, ml100k, rewrite=rewrite)
    rows = [r for r in cast(list[RankRow], read_examples(built.folder)) if r["variant"] == 0]
    assert len(verdicts) == len(rows) == built.manifest["counts"]["examples"]
    assert built.manifest["counts"]["teacher_rewrites"] == sum(v.kept for v in verdicts)
    for row, verdict in zip(rows, verdicts, strict=True):
        assert (row["source"] == "teacher") is verdict.kept
        text = render_completion(row["thoughts"], row["ranked_ids"], row["candidates"])
        assert parse_ranking(text, row["candidates"]).stated_ids[0] == row["target"]
        if not verdict.kept:
            assert verdict.reason  # why it was rejected
