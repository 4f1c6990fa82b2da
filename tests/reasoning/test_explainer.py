"""reasoning.explainer: what the explainer is shown, what it learns, what the service serves.

- The training target (the evidence thoughts over the explainer's own prompt) passes the
  same checks the service applies to a generation, on real ML-100K cases: grounded in
  the prompt, no repeat, the top item first.
- The Recommender serves an explainer's thoughts only when they pass; a hallucinated
  title, a repeat, a wrong first item or an explainer error gives the evidence thoughts,
  and the ranking is the fused one either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pytest

from baselines.features import rowset_cases
from graph_store.memory import MemoryGraphStore
from graph_store.types import Item
from reasoning.backends.base import Generation, GenerationParams, LLMUnavailable
from reasoning.collaborative import CollaborativeBundle
from reasoning.compact import PromptShape
from reasoning.evidence import NO_EVIDENCE, evidence_thoughts
from reasoning.explainer import (
    Evidence,
    check_thoughts,
    evidence_from_column,
    explainer_messages,
    explainer_reward,
    explainer_target,
    render_thoughts,
    reward_column,
    shown_titles,
)
from reasoning.fused import FusedRanker
from reasoning.parse import parse_thoughts
from reasoning.recommender import Recommender, RecommenderConfig
from recdata.schema import Dataset
from training.data import DataConfig, RoundCase, collect_cases
from training.explainer import masked_rows, ranking_to_explain


def _round_cases(dataset: Dataset, n: int = 25) -> list[RoundCase]:
    return collect_cases(
        DataConfig(dataset=dataset.name, limit_users=n, targets_per_user=1), dataset
    )


def test_training_targets_pass_the_served_checks(ml100k_slice: Dataset) -> None:
    cases = _round_cases(ml100k_slice)
    assert len(cases) >= 20
    with_chain = 0
    for case in cases:
        ranking = [case.items[i] for i in ranking_to_explain(case)]
        thoughts = explainer_target(case.history, case.chains, ranking)
        shown = shown_titles(case.history, case.chains, ranking)
        check = check_thoughts(thoughts, shown, ranking[0], (case.history, case.chains, ranking))
        assert check.accepted, (thoughts, check)
        prompt = explainer_messages(case.history, case.chains, ranking)[1]["content"]
        for title in shown:
            assert title.split(",")[0] in prompt  # what may be quoted is what is shown
        with_chain += any("someone who also" in t for t in thoughts)
    assert with_chain > 0  # chain thoughts are exercised, not only genre facts


def test_masked_rows_rebuild_the_full_target() -> None:
    thoughts = ('"Heat" ranks 1st: a', '"Alien" ranks 2nd: b', '"Fargo" ranks 3rd: c')
    rows = list(masked_rows(thoughts, masked=True))
    assert [k for _, _, k in rows] == [0, 1, 2]
    for given, completion, _ in rows:
        assert given + completion == render_thoughts(thoughts)
    assert len(list(masked_rows(thoughts, masked=False))) == 1


def test_check_thoughts_names_each_failure() -> None:
    heat, shown = Item("1", "Heat"), ["Heat", "Fargo"]
    assert check_thoughts(['"Heat" ranks 1st: like "Fargo"'], shown, heat).accepted
    assert not check_thoughts(['"Heat" ranks 1st: like "Alien"'], shown, heat).grounded
    assert check_thoughts(['"Heat" ranks 1st', '"heat"  ranks 1st.'], shown, heat).repeated
    assert not check_thoughts(['"Fargo" ranks 1st', '"Heat" ranks 2nd'], shown, heat).agrees
    assert not check_thoughts([f'"Heat" ranks {i}' for i in range(6)], shown, heat).bounded
    assert not check_thoughts([], shown, heat).accepted
    evidence: Evidence = ([], [], [heat])
    assert check_thoughts(['"Heat" ranks 1st: trust me'], shown, heat, evidence).supported is False
    no_evidence = '"Heat" ranks 1st: ' + NO_EVIDENCE
    assert check_thoughts([no_evidence], shown, heat, evidence).accepted


class _Scripted:
    """An explainer whose text is scripted per call (what a trained one may write, good or
    bad): the tiny test model cannot be trained to write either on demand."""

    name = "scripted"

    def __init__(self, write: object) -> None:
        self.write = write
        self.seen: list[list[dict[str, str]]] = []

    async def generate(
        self, batch: Sequence[list[dict[str, str]]], params: GenerationParams | None = None
    ) -> list[Generation]:
        self.seen += list(batch)
        if isinstance(self.write, Exception):
            raise self.write
        return [Generation(self.write(m), "stop", 1, 1, 0.0) for m in batch]  # type: ignore[operator]

    async def aclose(self) -> None:
        return None


def _fused_recommender(
    slice_bundle: tuple[CollaborativeBundle, MemoryGraphStore], explainer: object
) -> Recommender:
    bundle, store = slice_bundle
    fused = FusedRanker(bundle, None, PromptShape(), {})  # the base alone ranks: no LLM needed
    config = RecommenderConfig(thoughts="model")
    return Recommender(store, object(), config, fused=fused, explainer=explainer)  # type: ignore[arg-type]


def _first_title(messages: list[dict[str, str]]) -> str:
    ranked = messages[1]["content"].split("Ranked, best first:\n")[1]
    return ranked.splitlines()[0].split('"')[1]


WRITERS = {  # what an explainer may write, from the best (served) to the useless
    "good": lambda target, top: target,
    "unsupported": lambda target, top: f'1. "{top}" ranks 1st: the model says so',
    "hallucinated": lambda target, top: f'1. "{top}" ranks 1st: like "Not A Shown Film"',
    "repeated": lambda target, top: target.split("\n")[0] + "\n2." + target.split("\n")[0][2:],
    "wrong-first": lambda target, top: '1. "Star Wars" ranks 1st: it is shown nowhere',
    "error": None,
}


@pytest.mark.parametrize("mode", list(WRITERS))
def test_the_explainer_is_served_only_when_its_thoughts_pass(
    ml100k_slice: Dataset, slice_bundle: tuple[CollaborativeBundle, MemoryGraphStore], mode: str
) -> None:
    cases = rowset_cases(ml100k_slice, "test")[:3]
    rec = _fused_recommender(slice_bundle, None)
    orders, targets = [], {}
    for case in cases:
        prep = asyncio.run(rec.prepare(case.user_id, case.candidates))
        base = rec.fused.base(prep.fused_request())  # type: ignore[union-attr]
        order = [prep.candidates[j] for j in np.argsort(-base, kind="stable")]
        orders.append((prep, order))
        targets[order[0].title] = render_thoughts(
            explainer_target(prep.history, prep.chains, order)
        )
    writer = WRITERS[mode]
    write = (
        LLMUnavailable("explainer down")
        if writer is None
        else lambda m: writer(targets[_first_title(m)], _first_title(m))
    )
    explainer = _Scripted(write)
    rec.explainer = explainer  # type: ignore[assignment]
    got = asyncio.run(rec.recommend_many([(c.user_id, c.candidates) for c in cases], True))
    assert len(explainer.seen) == 3  # one prompt per request, in one call
    for (prep, order), result in zip(orders, got, strict=True):
        assert not result.fallback and result.valid
        assert [i.item_id for i in result.items] == [i.item_id for i in order]
        if mode == "good":
            assert result.thoughts == parse_thoughts(targets[order[0].title])
        else:
            assert result.thoughts == evidence_thoughts(prep.history, prep.chains, order)
    counts = rec.explainer_counts
    key = {"good": "served", "error": "failed"}.get(mode, "rejected")
    assert counts[key] == 3 and sum(counts.values()) == 3


def test_the_reward_counts_the_checks_and_survives_its_column(ml100k_slice: Dataset) -> None:
    case = _round_cases(ml100k_slice, 5)[0]
    ranking = [case.items[i] for i in ranking_to_explain(case)]
    column = reward_column(case.history, case.chains, ranking)
    target = render_thoughts(explainer_target(case.history, case.chains, ranking))
    history, chains, ranked = evidence_from_column(column)
    assert explainer_target(history, chains, ranked) == explainer_target(
        case.history, case.chains, ranking
    )
    top = ranking[0].title
    assert explainer_reward([target], evidence=[column]) == [1.0]
    made_up = f'1. "{top}" ranks 1st: the model says so'  # unsupported only
    assert explainer_reward([made_up], evidence=[column]) == [0.8]
