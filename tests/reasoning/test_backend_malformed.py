"""A broken OpenAI-compatible server: every failure is a typed LLMError, never a leak.

The server is `tests.reasoning.broken_llm.BrokenLLM`, a local HTTP server answering what
a real vLLM cannot be made to answer on demand.
"""

from __future__ import annotations

import json

import pytest

from reasoning.backends import (
    GenerationParams,
    LLMBadResponse,
    LLMRequestError,
    OpenAICompatBackend,
    OpenAICompatConfig,
)
from tests.reasoning.broken_llm import ERROR_400, BrokenLLM

MESSAGES = [{"role": "user", "content": "Hi"}]
NO_CHOICES = json.dumps({"id": "x", "object": "chat.completion", "choices": []}).encode()
NO_LOGPROBS = json.dumps(
    {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": " A"},
                "logprobs": {"content": [{"token": " A"}]},
            }
        ],
    }
).encode()


async def _both_calls(base_url: str) -> list[BaseException]:
    backend = OpenAICompatBackend(
        OpenAICompatConfig(base_url=base_url, model="m", max_retries=0, timeout_s=5)
    )
    raised: list[BaseException] = []
    try:
        for call in (
            backend.generate([MESSAGES], GenerationParams(max_tokens=4)),
            backend.score_choices([MESSAGES], "Answer:", [" A", " B"]),
        ):
            try:
                await call
            except Exception as err:
                raised.append(err)
        assert await backend.ping() == f"{base_url} serves m"  # /models answers
    finally:
        await backend.aclose()
    return raised


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"not json", "text/plain"),
        (b"not json", "application/json"),
        (b"{}", "application/json"),
        (b"[1, 2]", "application/json"),
        (NO_CHOICES, "application/json"),
        (b'{"choices": [{"message": null}]}', "application/json"),
    ],
)
async def test_a_malformed_200_is_llm_bad_response(body: bytes, content_type: str) -> None:
    with BrokenLLM(200, body, content_type) as llm:
        raised = await _both_calls(llm.base_url)
    assert len(raised) == 2 and all(isinstance(e, LLMBadResponse) for e in raised), raised


async def test_logprob_entries_without_a_logprob_are_llm_bad_response() -> None:
    with BrokenLLM(200, NO_LOGPROBS) as llm:
        raised = await _both_calls(llm.base_url)
    assert isinstance(raised[-1], LLMBadResponse), raised


async def test_a_400_is_llm_request_error_and_not_retried() -> None:
    with BrokenLLM(400, ERROR_400) as llm:
        raised = await _both_calls(llm.base_url)
        assert llm.completions == 2
    assert all(isinstance(e, LLMRequestError) and "400" in str(e) for e in raised), raised


@pytest.mark.parametrize(
    ("status", "body", "reason", "error"),
    [
        (400, ERROR_400, "LLM rejected the request", "LLMRequestError"),
        (200, b"not json", "LLM answered malformed", "LLMBadResponse"),
    ],
)
async def test_the_recommender_falls_back_on_any_llm_error(
    status: int, body: bytes, reason: str, error: str
) -> None:
    from graph_store.memory import MemoryGraphStore
    from reasoning.recommender import Recommender, RecommenderConfig
    from recdata import load_dataset

    graph = MemoryGraphStore.from_dataset(load_dataset("ml-100k"))
    with BrokenLLM(status, body) as llm:
        backend = OpenAICompatBackend(
            OpenAICompatConfig(base_url=llm.base_url, model="m", max_retries=0)
        )
        recommender = Recommender(
            graph, backend, RecommenderConfig(max_reasoning_tokens=8, thoughts="model")
        )
        assert recommender.last_llm is None
        try:
            for explain in (False, True):
                rec = await recommender.recommend("1", None, explain)
                assert rec.fallback and rec.reason == reason and not rec.valid
                assert len(rec.items) == 20
        finally:
            await backend.aclose()
            await graph.close()
    assert recommender.last_llm is not None and not recommender.last_llm.ok
    assert recommender.last_llm.reason == reason and recommender.last_llm.detail.startswith(error)
