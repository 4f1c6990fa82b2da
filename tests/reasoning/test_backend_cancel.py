"""The in-process backend stops a call promptly: a cancelled await (``asyncio.wait_for``)
or a passed deadline stops the worker thread within a forward pass, in free generation,
constrained generation and scoring alike, and releases the model to the next call.
Real tiny model, no mocks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from reasoning.backends import AnswerConstraint, GenerationParams, LLMTimeout
from reasoning.backends.transformers_backend import LocalBackendConfig, TransformersBackend

LONG = [{"role": "system", "content": "word " * 300}, {"role": "user", "content": "go on"}]
ENDLESS = 100_000  # tokens: the tiny model writes to its budget, minutes of work


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path) -> TransformersBackend:
    return TransformersBackend(LocalBackendConfig(model_path=str(tiny_model_dir), batch_size=1))


async def freed_within(backend: TransformersBackend, seconds: float) -> float:
    """How long the model stays busy after the caller stopped waiting (fails past seconds)."""
    started = time.monotonic()
    while backend._lock.locked():
        assert time.monotonic() - started < seconds, "the worker thread is still running"
        await asyncio.sleep(0.005)
    return time.monotonic() - started


def endless_generation(backend: TransformersBackend) -> Awaitable[Any]:
    return backend.generate([LONG], GenerationParams(max_tokens=ENDLESS))


def endless_constrained(backend: TransformersBackend) -> Awaitable[Any]:
    params = GenerationParams(max_tokens=ENDLESS, constraint=AnswerConstraint(regex="[a-z ]+"))
    return backend.generate([LONG], params)


def many_scorings(backend: TransformersBackend) -> Awaitable[Any]:
    return backend.score_choices([LONG] * 2000, "Answer:", [" A", " B"])


@pytest.mark.parametrize("call", [endless_generation, endless_constrained, many_scorings])
async def test_a_cancelled_call_stops_its_thread_and_frees_the_model(
    backend: TransformersBackend, call: Any
) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(call(backend), 0.3)
    await freed_within(backend, 1.0)
    started = time.perf_counter()
    scores = await backend.score_choices([LONG], "Answer:", [" A", " B"])
    assert len(scores) == 1 and time.perf_counter() - started < 2.0


@pytest.mark.parametrize("call", [endless_generation, endless_constrained, many_scorings])
async def test_the_backend_deadline_stops_every_path(tiny_model_dir: Path, call: Any) -> None:
    timed = TransformersBackend(
        LocalBackendConfig(model_path=str(tiny_model_dir), batch_size=1, timeout_s=0.3)
    )
    started = time.perf_counter()
    with pytest.raises(LLMTimeout, match=r"within 0\.3 s"):
        await call(timed)
    # 0.3 s, then at most one forward pass; the uncancelled call is minutes of work. The
    # bound leaves room for the other test worker sharing the two cores (scripts/test.sh).
    assert time.perf_counter() - started < 5.0
    assert not timed._lock.locked()


async def test_a_call_cancelled_while_waiting_for_the_model_never_runs(
    backend: TransformersBackend,
) -> None:
    running = asyncio.ensure_future(endless_generation(backend))
    await asyncio.sleep(0.1)
    waiting = asyncio.ensure_future(endless_generation(backend))  # blocked on the lock
    await asyncio.sleep(0.05)
    waiting.cancel()
    running.cancel()
    await asyncio.gather(running, waiting, return_exceptions=True)
    await freed_within(backend, 1.0)  # the waiting call gave up at once on getting the lock


async def test_wrapping_a_model_again_does_not_stack_hooks(
    backend: TransformersBackend,
) -> None:
    hooks = len(backend.model._forward_pre_hooks)
    TransformersBackend.from_model(backend.model, backend.tokenizer, backend.config)
    TransformersBackend.from_model(backend.model, backend.tokenizer, backend.config)
    assert len(backend.model._forward_pre_hooks) == hooks
