"""The graph-fallback baseline scores exactly as the service's LLM-failure fallback ranks."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pytest

from baselines import make_baseline
from baselines.graph import GraphFallbackRanker
from evaluation.protocol import load_cases, training_log
from evaluation.ranker import Case
from graph_store.memory import MemoryGraphStore
from reasoning.backends import LLMUnavailable
from reasoning.recommender import Recommender, RecommenderConfig
from recdata import load_dataset
from tests.baselines.synthetic import cyclic_log, items_frame, ring_case


class DeadLLM:
    """An LLM backend that is always down: the recommender falls back to the graph."""

    name = "dead"

    async def generate(self, *args: object, **kwargs: object) -> list[object]:
        raise LLMUnavailable("down")

    async def score_choices(self, *args: object, **kwargs: object) -> list[dict[str, float]]:
        raise LLMUnavailable("down")

    async def ping(self) -> str:
        raise LLMUnavailable("down")

    async def aclose(self) -> None:
        return None


@pytest.fixture(scope="module")
def ml100k():
    dataset = load_dataset("ml-100k")
    train = training_log(dataset, "test")
    return dataset, train, load_cases(dataset, "test")


def _order(scores: np.ndarray) -> list[int]:
    """The service's order: score desc, ties in the given candidate order."""
    return sorted(range(len(scores)), key=lambda j: (-scores[j], j))


async def _service_orders(
    graph: MemoryGraphStore, cases: Sequence[Case], explain: bool
) -> list[list[str]]:
    recommender = Recommender(graph, DeadLLM(), RecommenderConfig(fallback_on_llm_error=True))  # type: ignore[arg-type]
    recs = await recommender.recommend_many(
        [(c.user_id, list(c.candidates)) for c in cases], explain
    )
    assert all(r.fallback and r.reason == "LLM unavailable" for r in recs)
    return [[i.item_id for i in r.items] for r in recs]


def test_ranking_equals_the_service_fallback_order(ml100k) -> None:
    dataset, train, cases = ml100k
    chosen = cases[:: max(1, len(cases) // 40)]
    ranker = make_baseline("graph-fallback")
    ranker.fit(train, dataset.items)
    scores = ranker.rank(chosen).scores
    graph = MemoryGraphStore.from_frames(train, dataset.items)
    for explain in (False, True):
        service = asyncio.run(_service_orders(graph, chosen, explain))
        for case, row, order in zip(chosen, scores, service, strict=True):
            assert [case.candidates[j] for j in _order(row)] == order, case.user_id
    # the scores are the graph store's: co-occurrence votes, then popularity for the rest
    found = asyncio.run(graph.candidates(chosen[0].user_id, 20, among=chosen[0].candidates))
    by_id = {c.item.item_id: float(c.score) for c in found}
    assert scores[0].tolist() == [by_id.get(c, 0.0) for c in chosen[0].candidates]
    assert {c.source for c in found} <= {"co-interaction", "popular"}


def test_config_reaches_the_candidate_params_and_unknown_items_rank_last() -> None:
    ranker = make_baseline("graph-fallback", window=10, max_neighbours=5)
    assert isinstance(ranker, GraphFallbackRanker)
    assert (ranker.params.window, ranker.params.max_neighbours) == (10, 5)
    train, items = cyclic_log(20), items_frame(60)
    ranker.fit(train, items)
    case = ring_case("u3", 3)
    outside = Case(case.user_id, case.target, case.history, (*case.candidates[:-1], "nowhere"))
    row = ranker.rank([case, outside]).scores
    assert row.shape == (2, len(case.candidates))
    assert row[1, -1] < row[1, :-1].min()
    assert ranker.rank([]).scores.shape == (0, 0)
