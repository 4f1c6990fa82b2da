"""Micro-batching of concurrent /recommend calls for the in-process model.

The in-process backend runs one forward pass at a time, so N concurrent requests would
queue behind each other. `RecommendBatcher` collects the requests that arrive while a batch
is running and ranks them together in the next `Recommender.recommend_many` call (one
batched forward pass per explain mode), up to ``max_batch`` at a time. There is no waiting
window: a request arriving at an idle batcher starts at once.

Time spent queued for a batch is added to the ranking's ``llm_seconds``: like the queue
inside a vLLM server, it is waiting for the model, not work of the service.

Only explain=true requests are batched by the service (`Runtime.recommend`): decoding
many sequences together costs little more than one, while scoring is one long prefill per
request, and batching unequal prompts on CPU pads them all to the longest (measured with
the tiny test model: 8 scoring requests took 1.3 s batched against 0.16 s one by one).

A batch that fails (a graph-store error, unknown candidate items) is retried one request
at a time, so one bad request never fails its neighbours. A vLLM server batches by itself
(continuous batching), so the service sends those requests straight through.

    batcher = RecommendBatcher(recommender, max_batch=8)
    rec = await batcher.recommend("42", None, explain=False)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from reasoning.recommender import Recommendation, Recommender


@dataclass
class _Waiting:
    user_id: str
    candidates: Sequence[str] | None
    future: asyncio.Future[Recommendation]
    queued_at: float = field(default_factory=time.perf_counter)


class RecommendBatcher:
    def __init__(self, recommender: Recommender, max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.recommender = recommender
        self.max_batch = max_batch
        self._waiting: dict[bool, list[_Waiting]] = {True: [], False: []}
        self._drainers: dict[bool, asyncio.Task[None]] = {}

    async def recommend(
        self, user_id: str, candidates: Sequence[str] | None, explain: bool
    ) -> Recommendation:
        future: asyncio.Future[Recommendation] = asyncio.get_running_loop().create_future()
        self._waiting[explain].append(_Waiting(user_id, candidates, future))
        if explain not in self._drainers:
            self._drainers[explain] = asyncio.create_task(self._drain(explain))
        return await future

    async def _drain(self, explain: bool) -> None:
        queue = self._waiting[explain]
        try:
            while queue:
                batch = [w for w in queue[: self.max_batch] if not w.future.done()]
                del queue[: self.max_batch]
                if batch:
                    await self._run(batch, explain)
        finally:
            del self._drainers[explain]

    async def _run(self, batch: list[_Waiting], explain: bool) -> None:
        started = time.perf_counter()
        try:
            recs = await self.recommender.recommend_many(
                [(w.user_id, w.candidates) for w in batch], explain
            )
        except Exception as err:
            if len(batch) == 1:
                _settle(batch[0].future, error=err)
                return
            for waiting in batch:  # isolate the failing request
                await self._run([waiting], explain)
            return
        for waiting, rec in zip(batch, recs, strict=True):
            if rec.llm_seconds > 0:  # time queued for the model is time spent on the LLM
                rec = replace(rec, llm_seconds=rec.llm_seconds + started - waiting.queued_at)
            _settle(waiting.future, result=rec)


def _settle(
    future: asyncio.Future[Recommendation],
    result: Recommendation | None = None,
    error: BaseException | None = None,
) -> None:
    if future.done():  # the caller went away (client disconnect)
        return
    if error is not None:
        future.set_exception(error)
    elif result is not None:
        future.set_result(result)
