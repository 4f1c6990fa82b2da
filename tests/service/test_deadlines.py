"""A request's whole time, queue included, is bounded by its deadline (``llm_timeout_s``):
a late generation is cancelled and frees the model, queued calls past their deadline get
the graph scorer's ranking, and a queue that cannot serve a call in time answers it with
the fallback at once. Real graph, real tiny in-process model, no mocks.

The tiny model writes its thoughts until the token budget runs out, so a large
``max_reasoning_tokens`` makes explain=true run for minutes unless it is stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reasoning.outcomes import Recommendation
from service.batching import LATE_AFTER, LATE_RETRY_FACTOR, OVERLOADED, TIMED_OUT
from service.runtime import Runtime
from tests.service.conftest import settings_for

TIMEOUT_S = 2.0  # a scoring call takes 0.03 s, up to 0.7 s on a loaded 2-core machine
SLACK_S = 1.0  # a loaded machine's scheduling (two test workers); below TIMEOUT_S, so a
# call shed at once is told from one that waited; without the deadlines it is minutes more
ENDLESS = 20_000  # thought tokens: minutes of generation for the tiny model


async def timed(
    runtime: Runtime, user_id: str, explain: bool, **kwargs: object
) -> tuple[Recommendation, float]:
    started = time.perf_counter()
    rec = await runtime.recommend(user_id, None, explain, **kwargs)  # type: ignore[arg-type]
    return rec, time.perf_counter() - started


async def wait_until_free(runtime: Runtime, within_s: float) -> None:
    lock = runtime.llm._lock  # type: ignore[union-attr]
    deadline = time.monotonic() + within_s
    while lock.locked():
        assert time.monotonic() < deadline, "the model is still busy with a cancelled call"
        await asyncio.sleep(0.01)


@pytest.fixture
async def slow_runtime(tiny_model_dir: Path) -> AsyncIterator[Runtime]:
    settings = settings_for(
        tiny_model_dir,
        llm_timeout_s=TIMEOUT_S,
        max_reasoning_tokens=ENDLESS,
        thoughts="model",
        local_batch_size=1,
    )
    runtime = await Runtime.start(settings)
    yield runtime
    await runtime.close()


def test_a_timed_out_generation_is_cancelled_and_the_next_request_gets_the_model(
    make_client,
) -> None:
    client = make_client(llm_timeout_s=TIMEOUT_S, max_reasoning_tokens=ENDLESS, thoughts="model")
    started = time.perf_counter()
    late = client.post("/recommend", json={"user_id": "1", "k": 3, "explain": True}).json()
    assert time.perf_counter() - started < TIMEOUT_S + SLACK_S
    assert late["fallback"] is True and late["fallback_reason"] == "LLM timed out"
    runtime = client.app.state.runtime
    asyncio.run(wait_until_free(runtime, within_s=1.0))
    started = time.perf_counter()
    body = client.post("/recommend", json={"user_id": "2", "k": 3, "explain": False}).json()
    assert time.perf_counter() - started < TIMEOUT_S
    assert body["fallback"] is False and body["valid"] is True


async def test_queued_requests_past_their_deadline_fall_back_in_time(
    slow_runtime: Runtime,
) -> None:
    """One explain call runs (batch size 1), three wait behind it: every one answers by
    its deadline with the fallback, and the model is free for the next call."""
    results = await asyncio.gather(*(timed(slow_runtime, str(u), True) for u in range(1, 5)))
    for rec, took in results:
        assert rec.fallback and rec.reason == TIMED_OUT
        assert took < TIMEOUT_S + SLACK_S
    assert not any(slow_runtime.batcher._waiting.values())  # type: ignore[union-attr]
    await wait_until_free(slow_runtime, within_s=1.0)
    rec, took = await timed(slow_runtime, "5", False)
    assert not rec.fallback and rec.valid and took < TIMEOUT_S


async def test_the_deadline_starts_when_the_request_arrived(slow_runtime: Runtime) -> None:
    """Time before the queue (body parsing, the cache lookup) counts: a request whose
    deadline has passed gets the fallback without waiting for the model."""
    rec, took = await timed(slow_runtime, "1", False, deadline=time.monotonic() - 0.01)
    assert rec.fallback and rec.reason == TIMED_OUT and took < SLACK_S


async def test_a_call_the_queue_cannot_serve_in_time_gets_the_fallback_at_once(
    slow_runtime: Runtime,
) -> None:
    """The estimate: calls queued ahead x the recent time of one (here as if a scoring call
    took 0.35 x the 1.8 s the model gets): the third of a burst cannot make it."""
    batcher = slow_runtime.batcher
    assert batcher is not None
    await timed(slow_runtime, "9", False)  # the first forward pass is slow: warm up
    batcher.batch_seconds[False] = 0.35 * TIMEOUT_S
    results = await asyncio.gather(*(timed(slow_runtime, str(u), False) for u in range(1, 5)))
    reasons = [rec.reason for rec, _ in results]
    assert OVERLOADED not in reasons[:2]  # queued (answered, or timed out on a busy machine)
    assert reasons[2:] == [OVERLOADED, OVERLOADED]
    for rec, took in results[2:]:
        assert rec.fallback and took < SLACK_S and len(rec.items) == 20
    assert all(took < TIMEOUT_S + SLACK_S for _, took in results)


@pytest.mark.slow
async def test_a_mode_that_ran_out_of_time_sheds_its_calls_and_retries_later(
    slow_runtime: Runtime,
) -> None:
    batcher = slow_runtime.batcher
    assert batcher is not None
    for user in map(str, range(10, 10 + LATE_AFTER)):  # explain runs out of time, in a row
        first, took = await timed(slow_runtime, user, True)
        assert first.reason == TIMED_OUT and took < TIMEOUT_S + SLACK_S
        await wait_until_free(slow_runtime, within_s=1.0)
    shed, took = await timed(slow_runtime, "2", True)  # explain cannot meet deadlines now
    assert shed.fallback and shed.reason == OVERLOADED and took < SLACK_S
    await wait_until_free(slow_runtime, within_s=1.0)
    rec, took = await timed(slow_runtime, "3", False)  # scoring still gets the model
    assert not rec.fallback and took < TIMEOUT_S
    await asyncio.sleep(LATE_RETRY_FACTOR * TIMEOUT_S)  # a late batch takes < TIMEOUT_S
    retried, took = await timed(slow_runtime, "4", True)  # one call tries the model again
    assert retried.reason == TIMED_OUT and took < TIMEOUT_S + SLACK_S


def test_overloaded_answers_are_flagged_in_the_response(make_client) -> None:
    """A shed call is an ordinary 200 with the graph scorer's ranking, flagged."""
    client = make_client(llm_timeout_s=TIMEOUT_S, max_reasoning_tokens=ENDLESS, thoughts="model")
    for user in range(1, 1 + LATE_AFTER):  # explain=true cannot make it: it goes late
        body = client.post("/recommend", json={"user_id": str(user), "k": 3, "explain": True})
        assert body.json()["fallback_reason"] == "LLM timed out"

    async def burst() -> list[dict]:
        import httpx

        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            calls = [
                http.post("/recommend", json={"user_id": str(u), "k": 3, "explain": True})
                for u in range(10, 13)
            ]
            return [r.json() for r in await asyncio.gather(*calls)]

    bodies = client.portal.call(burst)
    assert [b["fallback_reason"] for b in bodies] == ["LLM overloaded"] * 3
    text = client.get("/metrics").text
    assert 'r2rec_fallback_total{reason="LLM overloaded"}' in text


def test_with_on_overload_503_a_shed_call_is_503_with_retry_after(make_client) -> None:
    """The same overload as above, configured to refuse: 503, Retry-After, no ranking."""
    client = make_client(
        llm_timeout_s=TIMEOUT_S, max_reasoning_tokens=ENDLESS, thoughts="model", on_overload="503"
    )
    for user in range(1, 1 + LATE_AFTER):  # explain=true cannot make it: it goes late
        body = client.post("/recommend", json={"user_id": str(user), "k": 3, "explain": True})
        assert body.json()["fallback_reason"] == "LLM timed out"

    async def burst() -> list[tuple[int, str | None, dict]]:
        import httpx

        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            calls = [
                http.post("/recommend", json={"user_id": str(u), "k": 3, "explain": True})
                for u in range(10, 13)
            ]
            replies = await asyncio.gather(*calls)
            return [(r.status_code, r.headers.get("retry-after"), r.json()) for r in replies]

    for status, retry_after, body in client.portal.call(burst):
        assert status == 503 and body["error"] == "overloaded"
        assert retry_after is not None and int(retry_after) >= 1
    assert (
        client.post("/recommend", json={"user_id": "20", "k": 3, "explain": False}).status_code
        == 200
    )
