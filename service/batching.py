"""The queue in front of the in-process model: micro-batching and just-in-time preparation.

The in-process backend runs one forward pass at a time. `RecommendBatcher` queues the
/recommend calls per mode and feeds them to `Recommender.recommend_many` in arrival order:
explain=true calls that arrived while a batch was running are ranked together (up to
``explain_batch``: decoding many sequences together costs little more than one), scoring
calls one at a time by default (``score_batch``: scoring is one long prefill per request,
and batching unequal prompts on CPU pads them all to the longest; measured with the tiny
test model, 8 scoring requests took 1.3 s batched against 0.16 s one by one). There is no
waiting window. Batches of the two modes take turns (one asyncio lock, first come first
served), as the model runs one call at a time anyway: so a batch's time is its own cost,
which the load shedding below estimates from. Before each batch the queue yields to the
event loop until a pass of the loop admits no new call (`ADMIT_PASSES` at most): a burst
that has already reached the sockets is parsed and queued first, so it joins the batch
instead of waiting behind it, and its parsing does not compete with the model for the
CPUs and the GIL. An idle queue's call starts after those few passes (microseconds).

A call is prepared (history, candidates and chains from the graph, the prompt) when its
batch is taken from the queue, not when it arrives, so a burst of arrivals does not make
each request wait on the event loop behind every other request's preparation, and the
prompt holds the graph as it is when the model reads it. Time spent queued is added to the
ranking's ``llm_seconds``: like the queue inside a vLLM server, it is waiting for the
model, not work of the service.

A batch that fails (a graph-store error, unknown candidate items) is retried one request
at a time, so one bad request never fails its neighbours. A vLLM server batches by itself
(continuous batching), so the service sends those requests straight through.

Deadlines. Every call carries a deadline (``time.monotonic()`` seconds; the service sets it
from ``llm_timeout_s`` when the request arrived, see `service.runtime`) by which the model
must have answered, and time in the queue counts against it:

* a call still queued at its deadline leaves the queue and gets the graph scorer's
  ranking (``fallback``, reason "LLM timed out"), without waiting for the model; so does,
  when its turn comes, a call with less time left than its mode's recent batch time (it
  would only hold the model until its deadline and fall back then);
* a batch gives the LLM until the earliest deadline among its calls (they arrived within
  one batch's run of each other); past it the Recommender cancels the call, the in-process
  backend stops its worker thread at the next layer of the model, and the whole batch
  gets the fallback;
* a call the queue cannot serve in time is not queued (load shedding): the estimate is
  what is left of the batch running now (its mode's recent batch time less the time it
  has run, at most until its deadline) plus, for each mode, the batches queued (with the
  new call: ``ceil(queued / batch size)``) times that mode's recent batch time (the
  median of its last ``RECENT`` batches that asked the model, once there are
  ``MIN_SAMPLES``: the first batches after start-up are several times slower, and one
  stall should not shed the next calls); both modes count, since they share the model.
  Such a call gets the graph scorer's ranking at once (reason "LLM overloaded").
  Serving the fallback is the default rather than answering 503: a recommender's client
  would rather show a ranking than an error, and it is the answer the call would get at
  its deadline anyway, only sooner and without costing the model anything, so it neither
  holds a connection until the deadline nor invites a retry storm. A deployment whose
  load balancer should move such calls to another replica sets ``on_overload="503"``
  (``R2REC_ON_OVERLOAD``): the call raises `Overloaded`, which the service answers with
  503 and a ``Retry-After`` of the queue's expected wait. An idle model (nothing queued
  or running) always takes the call, so a slow estimate never locks the model out;
* a mode whose last ``LATE_AFTER`` batches ran out of time cannot meet deadlines at the
  moment (explain=true with a long thought budget under load): its calls get the
  fallback at once, except one per
  ``LATE_RETRY_FACTOR`` x its batch time, whatever the queue, which tries the model
  again; so a hopeless mode holds the model at most about 1 / (1 + LATE_RETRY_FACTOR) of
  the time instead of all of it, the other mode gets the rest, and the mode comes back
  when the load lifts.

    batcher = RecommendBatcher(recommender, explain_batch=8)
    rec = await batcher.recommend("42", None, explain=False)
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from reasoning.backends import LLMTimeout
from reasoning.explain import RecommendationListener
from reasoning.outcomes import Recommendation, fallback_reason
from reasoning.recommender import Recommender

ADMIT_PASSES = 32  # most event-loop passes spent admitting arrivals before a batch starts
OVERLOADED = "LLM overloaded"  # fallback reason of a call the queue could not serve in time
TIMED_OUT = fallback_reason(LLMTimeout())
RECENT = 8  # batches whose median is a mode's recent batch time
MIN_SAMPLES = 3  # batches a mode must have run before its time is estimated
LATE_AFTER = 2  # batches in a row that ran out of time make a mode late
LATE_RETRY_FACTOR = 4.0  # a late mode tries the model once per this many batch times


class Overloaded(Exception):
    """The queue cannot serve a call by its deadline (``on_overload="503"``)."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the model's queue is full; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass
class _Waiting:
    user_id: str
    candidates: Sequence[str] | None
    future: asyncio.Future[Recommendation]
    deadline: float | None  # time.monotonic() by which the model must have answered
    listener: RecommendationListener | None = None  # a streaming client's (evidence, thoughts)
    queued_at: float = field(default_factory=time.perf_counter)
    taken: bool = False  # in a batch: the batch's deadline bounds it from here on


class RecommendBatcher:
    def __init__(
        self,
        recommender: Recommender,
        explain_batch: int,
        score_batch: int = 1,
        on_overload: Literal["fallback", "503"] = "fallback",
    ) -> None:
        if min(explain_batch, score_batch) < 1:
            raise ValueError(f"batch sizes must be >= 1, got {explain_batch}, {score_batch}")
        self.recommender = recommender
        self.on_overload = on_overload
        self.max_batch = {True: explain_batch, False: score_batch}
        self._waiting: dict[bool, list[_Waiting]] = {True: [], False: []}
        self._drainers: dict[bool, asyncio.Task[None]] = {}
        self.batch_seconds: dict[bool, float] = {}  # recent time of a batch that asked the LLM
        self._recent: dict[bool, deque[float]] = {m: deque(maxlen=RECENT) for m in (True, False)}
        self._late_in_a_row = {True: 0, False: 0}
        self._late_at: dict[bool, float] = {}  # monotonic() when a mode last ran out of time
        self._model = asyncio.Lock()  # one batch at a time, either mode
        self._late_calls: set[asyncio.Task[None]] = set()  # fallbacks served from the queue
        # the running batch: its mode, perf_counter() when it started, its deadline
        self._running: tuple[bool, float, float | None] | None = None

    @property
    def busy(self) -> bool:
        """Whether a request is queued, running, or being served its fallback here."""
        waiting = self._waiting[True] or self._waiting[False]
        return bool(waiting or self._drainers or self._late_calls or self._running)

    async def recommend(
        self,
        user_id: str,
        candidates: Sequence[str] | None,
        explain: bool,
        deadline: float | None = None,
        listener: RecommendationListener | None = None,
    ) -> Recommendation:
        """The ranking, by the model if it can answer by ``deadline`` (``time.monotonic()``;
        None = ``llm_timeout_s`` of the Recommender from now), else the graph scorer's.
        ``listener`` hears the evidence and the thoughts (`reasoning.explain`); a caller
        that is cancelled (its client left) leaves the queue, or, when its batch is
        running, its row stops at the next token (the listener's ``wanted`` turns false)."""
        if deadline is None and self.recommender.config.llm_timeout_s is not None:
            deadline = time.monotonic() + self.recommender.config.llm_timeout_s
        if deadline is not None and not self._admits(explain, deadline):
            if self.on_overload == "503":
                raise Overloaded(self._expected_wait_s())
            return await self.recommender.fallback(user_id, candidates, OVERLOADED, listener)
        future: asyncio.Future[Recommendation] = asyncio.get_running_loop().create_future()
        waiting = _Waiting(user_id, candidates, future, deadline, listener)
        self._waiting[explain].append(waiting)
        if explain not in self._drainers:
            self._drainers[explain] = asyncio.create_task(self._drain(explain))
        if deadline is None:
            return await future
        try:
            await asyncio.wait({future}, timeout=max(0.0, deadline - time.monotonic()))
        except asyncio.CancelledError:  # the caller went away
            future.cancel()
            raise
        if future.done() or waiting.taken:
            return await future
        # still queued at its deadline: leave the queue, the graph scorer answers now
        self._waiting[explain].remove(waiting)
        future.cancel()
        rec = await self.recommender.fallback(user_id, candidates, TIMED_OUT, listener)
        if rec.cold_start:
            return rec
        return replace(rec, llm_seconds=time.perf_counter() - waiting.queued_at)

    def _admits(self, explain: bool, deadline: float) -> bool:
        """Whether the model can answer a new call of this mode by ``deadline``."""
        late_at = self._late_at.get(explain)
        if late_at is not None:
            retry_after = LATE_RETRY_FACTOR * statistics.median(self._recent[explain])
            if time.monotonic() - late_at < retry_after:
                return False
            self._late_at[explain] = time.monotonic()  # this call tries; no other until then
            return True
        if not any(self._waiting.values()) and self._running is None:
            return True  # an idle model always tries
        now = time.monotonic()
        expected = 0.0
        if self._running is not None:
            mode, since, until = self._running
            left = self.batch_seconds.get(mode, 0.0) - (time.perf_counter() - since)
            if mode in self._late_at:  # a late mode's try most likely runs to its deadline
                left = math.inf
            expected += max(0.0, min(left, math.inf if until is None else until - now))
        for mode, seconds in self.batch_seconds.items():
            waiting = len(self._waiting[mode]) + (mode == explain)
            expected += math.ceil(waiting / self.max_batch[mode]) * seconds
        return now + expected <= deadline

    def _expected_wait_s(self) -> int:
        """Whole seconds until the queued batches have run (at least 1): a Retry-After."""
        queued = sum(
            math.ceil(len(self._waiting[mode]) / self.max_batch[mode]) * seconds
            for mode, seconds in self.batch_seconds.items()
        )
        return max(1, math.ceil(queued))

    async def _drain(self, explain: bool) -> None:
        queue, size = self._waiting[explain], self.max_batch[explain]
        try:
            while queue:
                async with self._model:
                    await self._admit_arrivals(queue)
                    now = time.monotonic()
                    batch: list[_Waiting] = []
                    needs = self.batch_seconds.get(explain, 0.0)
                    for waiting in list(queue):
                        if len(batch) == size:
                            break
                        if waiting.future.done():  # the caller went away
                            queue.remove(waiting)
                        elif waiting.deadline is None or waiting.deadline - now > needs:
                            batch.append(waiting)
                        elif waiting.deadline > now:  # too late for the model: fall back now
                            queue.remove(waiting)
                            waiting.taken = True
                            late = asyncio.create_task(self._fall_back(waiting))
                            self._late_calls.add(late)
                            late.add_done_callback(self._late_calls.discard)
                        # else past its deadline: its own timer serves it
                    for waiting in batch:
                        queue.remove(waiting)
                        waiting.taken = True
                    if batch:
                        await self._run(batch, explain)
                if not batch and queue:
                    await asyncio.sleep(0.001)  # only calls whose timers are about to fire
        finally:
            del self._drainers[explain]

    async def _fall_back(self, waiting: _Waiting) -> None:
        try:
            rec = await self.recommender.fallback(
                waiting.user_id, waiting.candidates, TIMED_OUT, waiting.listener
            )
        except Exception as err:
            _settle(waiting.future, error=err)
            return
        if not rec.cold_start:
            rec = replace(rec, llm_seconds=time.perf_counter() - waiting.queued_at)
        _settle(waiting.future, result=rec)

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
        deadline = min((w.deadline for w in batch if w.deadline is not None), default=None)
        self._running = (explain, started, deadline)
        try:
            listeners = [w.listener for w in batch]
            recs = await self.recommender.recommend_many(
                [(w.user_id, w.candidates) for w in batch],
                explain,
                deadline=deadline,
                listeners=listeners if any(listeners) else None,
            )
        except Exception as err:
            if len(batch) == 1:
                _settle(batch[0].future, error=err)
                return
            for waiting in batch:  # isolate the failing request
                await self._run([waiting], explain)
            return
        finally:
            self._running = None
        if any(rec.llm_seconds > 0 for rec in recs):  # the LLM was asked: a batch's cost
            recent = self._recent[explain]
            recent.append(time.perf_counter() - started)
            if len(recent) >= MIN_SAMPLES:
                self.batch_seconds[explain] = statistics.median(recent)
            if not any(rec.reason == TIMED_OUT for rec in recs):
                self._late_in_a_row[explain] = 0
                self._late_at.pop(explain, None)
            else:
                self._late_in_a_row[explain] += 1
                if self._late_in_a_row[explain] >= LATE_AFTER:
                    self._late_at[explain] = time.monotonic()
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
