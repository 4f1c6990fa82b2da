"""POST /recommend/stream: the /recommend answer as Server-Sent Events, as it is made.

Events, in order (each ``event: <name>`` and one ``data:`` line of JSON, the models in
`service.recommend.protocol`):

1. ``evidence``: history, candidates and evidence chains, as soon as the graph answered
   (for the in-process model: when the request's batch is taken from the queue);
2. ``thought`` (explain=true): pieces of the thoughts, ``index`` counting their lines
   (steps) from 0: each evidence thought whole once the model has ranked
   (``R2REC_THOUGHTS=evidence``), or the model's as it writes them (``model``);
3. ``fallback`` when the graph scorer ranks instead of the model (with the reason);
4. ``ranking``: the body /recommend would return;
5. ``done``.

A failure after the stream began is an ``error`` event carrying the HTTP status /recommend
would have answered, and ends the stream. Bad input, a missing key, unknown candidate
items and a graph store that cannot be reached for them are answered before the stream
begins, as plain HTTP errors. A cached answer is replayed at once. A comment line every
`KEEPALIVE_S` seconds keeps proxies from closing a stream waiting in the model's queue.

A client that disconnects cancels its request: Starlette cancels the response, whose
clean-up marks the listener unwanted and cancels the ranking task, so the in-process
model drops the request from its queue or stops its row of the running batch at the next
token, and the vLLM backend closes its HTTP stream, which makes vLLM abort the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import orjson
from starlette.responses import StreamingResponse

from graph_store.types import Chain, GraphStoreUnavailable, HistoryEntry, InvalidInputError, Item
from reasoning.backends import LLMRequestError
from reasoning.outcomes import UnknownItemsError
from service.batching import Overloaded
from service.recommend.protocol import RecommendRequest
from service.recommend.serving import answer, evidence_chains, lookup_cached
from service.runtime import Runtime

log = logging.getLogger("r2rec.service")
KEEPALIVE_S = 15.0


class EventStream(StreamingResponse):
    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[bytes]) -> None:
        super().__init__(content, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class StreamListener:
    """A `reasoning.explain.RecommendationListener` that queues what it hears for the
    response (thread-safe: the in-process model calls it from its worker thread)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.gone = False

    @property
    def wanted(self) -> bool:
        return not self.gone

    def evidence(
        self, history: Sequence[HistoryEntry], candidates: Sequence[Item], chains: Sequence[Chain]
    ) -> None:
        payload = {
            "history": [{"item_id": h.item.item_id, "title": h.item.title} for h in history],
            "candidates": [{"item_id": i.item_id, "title": i.title} for i in candidates],
            "evidence": [c.model_dump(mode="json") for c in evidence_chains(chains)],
        }
        self.loop.call_soon_threadsafe(self.queue.put_nowait, ("evidence", payload))

    def thought_text(self, delta: str) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, ("text", delta))


class ThoughtLines:
    """Splits the model's text into ``thought`` pieces, one index per non-empty line."""

    def __init__(self) -> None:
        self.index = 0
        self.line_has_text = False

    def feed(self, text: str) -> Iterator[dict[str, Any]]:
        lines = text.split("\n")
        for number, line in enumerate(lines):
            if number:  # a newline ended the line before
                if self.line_has_text:
                    self.index += 1
                self.line_has_text = False
            if line and (self.line_has_text or line.strip()):
                self.line_has_text = True
                yield {"index": self.index, "delta": line}


async def stream(runtime: Runtime, request: RecommendRequest) -> EventStream:
    """Check what can be checked before the stream begins, then stream."""
    started = time.perf_counter()
    deadline = time.monotonic() + runtime.settings.llm_timeout_s
    if request.candidates is not None:
        known = await runtime.graph.items(request.candidates)
        missing = [i for i in request.candidates if i not in known]
        if missing:
            raise UnknownItemsError(missing)
    lookup, hit = await lookup_cached(runtime, request, started)
    if hit is not None:
        return EventStream(_replay(hit, started))
    return EventStream(_live(runtime, request, started, deadline, lookup))


async def _replay(body: dict[str, Any], started: float) -> AsyncIterator[bytes]:
    yield sse(
        "evidence",
        {
            "user_id": body["user_id"],
            "history": body["history"],
            "candidates": [{"item_id": i["item_id"], "title": i["title"]} for i in body["items"]],
            "evidence": body["evidence"],
        },
    )
    for index, thought in enumerate(body["thoughts"]):
        yield sse("thought", {"index": index, "delta": f"{index + 1}. {thought}"})
    yield sse("ranking", body)
    yield sse("done", {"latency_ms": (time.perf_counter() - started) * 1000, "cached": True})


async def _live(
    runtime: Runtime,
    request: RecommendRequest,
    started: float,
    deadline: float,
    lookup: Any,
) -> AsyncIterator[bytes]:
    listener = StreamListener(asyncio.get_running_loop())
    task = asyncio.create_task(answer(runtime, request, started, deadline, lookup, listener))
    lines = ThoughtLines()
    evidence_sent = False

    def shaped(kind: str, value: Any) -> Iterator[bytes]:
        nonlocal evidence_sent
        if kind == "evidence":
            evidence_sent = True
            yield sse("evidence", {"user_id": request.user_id, **value})
        else:
            for piece in lines.feed(value):
                yield sse("thought", piece)

    get: asyncio.Future[tuple[str, Any]] | None = None
    try:
        while not task.done():
            get = asyncio.ensure_future(listener.queue.get())
            done, _ = await asyncio.wait(
                {get, task}, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
            )
            if get in done:
                for chunk in shaped(*get.result()):
                    yield chunk
            elif not done:
                yield b": keep-alive\n\n"
            get.cancel()
            get = None
        await asyncio.sleep(0)  # the model thread's last pieces land on the queue
        while not listener.queue.empty():
            for chunk in shaped(*listener.queue.get_nowait()):
                yield chunk
        try:
            rec, payload = task.result()
        except Exception as err:
            yield sse("error", _error_event(err))
            return
        if not evidence_sent:
            yield sse(
                "evidence",
                {
                    "user_id": request.user_id,
                    "history": payload["history"],
                    "candidates": [
                        {"item_id": i.item_id, "title": i.title} for i in rec.items[:20]
                    ],
                    "evidence": payload["evidence"],
                },
            )
        if rec.fallback:
            yield sse("fallback", {"reason": rec.reason})
        yield sse("ranking", payload)
        yield sse("done", {"latency_ms": (time.perf_counter() - started) * 1000, "cached": False})
    finally:
        listener.gone = True  # the model stops this request's row at its next token
        if get is not None:
            get.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


def _error_event(err: Exception) -> dict[str, Any]:
    """The error body /recommend would have answered, with its status."""
    if isinstance(err, Overloaded):
        return {
            "status": 503,
            "error": "overloaded",
            "detail": str(err),
            "retry_after_s": err.retry_after_s,
        }
    if isinstance(err, GraphStoreUnavailable):
        log.warning("recommend stream: graph store unavailable: %s", err)
        detail = "the graph store is unavailable; retry later"
        return {"status": 503, "error": "graph_store_unavailable", "detail": detail}
    if isinstance(err, UnknownItemsError):
        return {"status": 422, "error": "unknown_items", "detail": str(err)}
    if isinstance(err, InvalidInputError):
        return {"status": 422, "error": "invalid_input", "detail": str(err)}
    if isinstance(err, LLMRequestError):
        log.warning("recommend stream: LLM server refused: %s", err)
        detail = "the LLM server refused the request"
        return {"status": 502, "error": "llm_rejected_request", "detail": detail}
    log.exception("recommend stream failed", exc_info=err)
    return {"status": 500, "error": "internal_error", "detail": "the request failed"}
