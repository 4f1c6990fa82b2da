"""RecommendBatcher: concurrent calls share LLM batches, give the same rankings as one-by-one
calls, and one bad request does not fail the others (real graph, real tiny model)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from evaluation.protocol import load_cases, training_log
from graph_store.memory import MemoryGraphStore
from reasoning.backends.transformers_backend import LocalBackendConfig, TransformersBackend
from reasoning.outcomes import Recommendation, UnknownItemsError
from reasoning.recommender import Recommender, RecommenderConfig
from recdata import load_dataset
from service.batching import RecommendBatcher


class CountingRecommender(Recommender):
    """The real recommender, recording the size of each recommend_many call."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.batches: list[tuple[int, bool]] = []

    async def recommend_many(
        self,
        requests: Sequence[tuple[str, Sequence[str] | None]],
        explain: bool,
        deadline: float | None = None,
        listeners=None,
    ) -> list[Recommendation]:
        self.batches.append((len(requests), explain))
        return await super().recommend_many(requests, explain, deadline, listeners)


@pytest.fixture(scope="module")
def setup(tiny_model_dir: Path):
    dataset = load_dataset("ml-100k")
    graph = MemoryGraphStore.from_frames(training_log(dataset, "test"), dataset.items)
    llm = TransformersBackend(LocalBackendConfig(model_path=str(tiny_model_dir)))
    recommender = CountingRecommender(
        graph, llm, RecommenderConfig(max_reasoning_tokens=16, thoughts="model")
    )
    return recommender, load_cases(dataset, "test")[:6]


async def test_concurrent_calls_are_ranked_in_shared_batches_with_the_same_results(setup):
    recommender, cases = setup
    alone = [await recommender.recommend(c.user_id, list(c.candidates), False) for c in cases]
    recommender.batches = []
    batcher = RecommendBatcher(recommender, explain_batch=4, score_batch=4)
    together = await asyncio.gather(
        *(batcher.recommend(c.user_id, list(c.candidates), False) for c in cases)
    )
    assert recommender.batches == [(4, False), (2, False)]
    for one, other in zip(alone, together, strict=True):
        assert [i.item_id for i in one.items] == [i.item_id for i in other.items]
        assert other.valid and not other.fallback


async def test_a_burst_arriving_over_several_loop_passes_joins_one_batch(setup):
    """As requests parsed off different sockets do: each call reaches the queue one pass of
    the event loop after the previous one, yet they all start together."""
    recommender, cases = setup
    batcher = RecommendBatcher(recommender, explain_batch=4, score_batch=4)

    async def arrive_after(passes: int, user_id: str, candidates: list[str]) -> Recommendation:
        for _ in range(passes):
            await asyncio.sleep(0)
        return await batcher.recommend(user_id, candidates, False)

    recommender.batches = []
    await asyncio.gather(
        *(arrive_after(k, c.user_id, list(c.candidates)) for k, c in enumerate(cases[:4]))
    )
    assert recommender.batches == [(4, False)]


async def test_a_failing_request_does_not_fail_its_batch(setup):
    recommender, cases = setup
    batcher = RecommendBatcher(recommender, explain_batch=8, score_batch=8)
    calls = [batcher.recommend(c.user_id, list(c.candidates), False) for c in cases[:3]]
    calls.insert(1, batcher.recommend(cases[3].user_id, ["no-such-item"], False))
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(results[1], UnknownItemsError)
    good = [r for i, r in enumerate(results) if i != 1]
    assert all(isinstance(r, Recommendation) and r.valid for r in good)


async def test_explain_and_scoring_requests_are_batched_separately(setup):
    recommender, cases = setup
    recommender.batches = []
    batcher = RecommendBatcher(recommender, explain_batch=8, score_batch=8)
    results = await asyncio.gather(
        *(
            batcher.recommend(c.user_id, list(c.candidates), i % 2 == 0)
            for i, c in enumerate(cases[:4])
        )
    )
    assert sorted(recommender.batches) == [(2, False), (2, True)]
    assert [r.user_id for r in results] == [c.user_id for c in cases[:4]]


async def test_scoring_calls_go_one_at_a_time_by_default(setup):
    recommender, cases = setup
    recommender.batches = []
    batcher = RecommendBatcher(recommender, explain_batch=8)
    await asyncio.gather(*(batcher.recommend(c.user_id, None, False) for c in cases[:3]))
    assert recommender.batches == [(1, False)] * 3


def test_batch_sizes_must_be_positive(setup):
    with pytest.raises(ValueError, match="batch sizes"):
        RecommendBatcher(setup[0], explain_batch=0)
