"""The queue in front of the in-process model: micro-batching and just-in-time preparation.

The in-process backend runs one forward pass at a time. `RecommendBatcher` queues the
/recommend calls per mode and feeds them to `Recommender.recommend_many` in arrival order:
explain=true calls that arrived while a batch was running are ranked together (up to
``explain_batch``: decoding many sequences together costs little more than one), scoring
calls one at a time by default (``score_batch``: scoring is one long prefill per request,
and batching unequal prompts on CPU pads them all to the longest; measured with the tiny
test model, 8 scoring requests took 1.3 s batched against 0.16 s one by one). There is no
waiting window. Before each batch the queue yields to the event loop until a pass of the
loop admits no new call (`ADMIT_PASSES` at most): a burst that has already reached the
sockets is parsed and queued first, so it joins the batch instead of waiting behind it,
and its parsing does not compete with the model for the CPUs and the GIL. An idle
queue's call starts after those few passes (microseconds).

A call is prepared (history, candidates and chains from the graph, the prompt) when its
batch is taken from the queue, not when it arrives, so a burst of arrivals does not make
each request wait on the event loop behind every other request's preparation, and the
prompt holds the graph as it is when the model reads it. Time spent queued is added to the
ranking's ``llm_seconds``: like the queue inside a vLLM server, it is waiting for the
model, not work of the service.

A batch that fails (a graph-store error, unknown candidate items) is retried one request
at a time, so one bad request never fails its neighbours. A vLLM server batches by itself
(continuous batching), so the service sends those requests straight through.

    batcher = RecommendBatcher(recommender, explain_batch=8)
    rec = await batcher.recommend("42", None, explain=False)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from reasoning.recommender import Recommendation, Recommender

ADMIT_PASSES = 32  # most event-loop passes spent admitting arrivals before a batch starts


@dataclass
class _Waiting:
    user_id: str
    candidates: Sequence[str] | None
    future: asyncio.Future[Recommendation]
    queued_at: float = field(default_factory=time.perf_counter)


class RecommendBatcher:
    def __init__(self, recommender: Recommender, explain_batch: int, score_batch: int = 1) -> None:
        if min(explain_batch, score_batch) < 1:
            raise ValueError(f"batch sizes must be >= 1, got {explain_batch}, {score_batch}")
        self.recommender = recommender
        self.max_batch = {True: explain_batch, False: score_batch}
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
        queue, size = self._waiting[explain], self.max_batch[explain]
        try:
            while queue:
                await self._admit_arrivals(queue)
                batch = [w for w in queue[:size] if not w.future.done()]
                del queue[:size]
                if batch:
                    await self._run(batch, explain)
        finally:
            del self._drainers[explain]

    @staticmethod
    async def _admit_arrivals(queue: list[_Waiting]) -> None:
        """Yield until two passes of the event loop in a row queue nothing new."""
        quiet = 0
        for _ in range(ADMIT_PASSES):
            before = len(queue)
            await asyncio.sleep(0)
            quiet = quiet + 1 if len(queue) == before else 0
            if quiet == 2:
                return

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
