"""Typed failures the service maps to its fallback: LLMTimeout, LLMUnavailable, LLMRequestError.

Timeouts are checked on the real vLLM server and in-process; the unreachable case uses a
loopback port nobody listens on. Also covers the factory and config validation.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reasoning.backends import (
    AnswerConstraint,
    GenerationParams,
    LLMRequestError,
    LLMTimeout,
    LLMUnavailable,
    OpenAICompatBackend,
    OpenAICompatConfig,
    make_backend,
)
from reasoning.backends.transformers_backend import LocalBackendConfig, TransformersBackend
from tests.harness.vllm import VLLMServer, free_port

MESSAGES = [{"role": "user", "content": "Tell me a long story about films."}]
LONG = GenerationParams(max_tokens=900)
# The tiny random model may end at once on its own EOS; a constraint makes it write ~600
# tokens, which cannot arrive within the 50 ms limit.
FORCED_LONG = GenerationParams(max_tokens=900, constraint=AnswerConstraint(regex="(film ){300}"))


async def test_vllm_timeout_raises_llm_timeout(vllm_server: VLLMServer) -> None:
    config = OpenAICompatConfig(
        base_url=vllm_server.base_url, model=vllm_server.model, timeout_s=0.05
    )
    backend = OpenAICompatBackend(config)
    try:
        with pytest.raises(LLMTimeout, match="no answer within"):
            await backend.generate([MESSAGES], FORCED_LONG)
    finally:
        await backend.aclose()


async def test_local_timeout_raises_llm_timeout(local_backend: TransformersBackend) -> None:
    config = LocalBackendConfig(model_path=local_backend.config.model_path, timeout_s=0.05)
    hurried = TransformersBackend.from_model(local_backend.model, local_backend.tokenizer, config)
    with pytest.raises(LLMTimeout, match="no answer within"):
        await hurried.generate([MESSAGES], LONG)


async def test_dead_port_raises_llm_unavailable() -> None:
    config = OpenAICompatConfig(
        base_url=f"http://127.0.0.1:{free_port()}/v1",
        model="m",
        max_retries=2,
        retry_backoff_s=0.01,
    )
    backend = OpenAICompatBackend(config)
    try:
        with pytest.raises(LLMUnavailable, match="after 3 attempts"):
            await backend.generate([MESSAGES])
        with pytest.raises(LLMUnavailable):
            await backend.score_choices([MESSAGES], "Answer:", [" A", " B"])
    finally:
        await backend.aclose()


async def test_rejected_request_is_not_retried(vllm_server: VLLMServer) -> None:
    backend = OpenAICompatBackend(OpenAICompatConfig(base_url=vllm_server.base_url))
    try:
        assert await backend.model_name() == vllm_server.model
        with pytest.raises(LLMRequestError, match="400"):
            await backend.generate([MESSAGES], GenerationParams(max_tokens=5000))
    finally:
        await backend.aclose()


def test_make_backend_builds_both_kinds(tiny_model_dir: Path) -> None:
    remote = make_backend("vllm", base_url="http://127.0.0.1:9/v1", timeout_s=3)
    assert isinstance(remote, OpenAICompatBackend) and remote.config.timeout_s == 3
    local = make_backend("local", model_path=str(tiny_model_dir), batch_size=2)
    assert isinstance(local, TransformersBackend) and local.config.batch_size == 2
    with pytest.raises(ValueError, match="unknown backend kind"):
        make_backend("ollama")  # type: ignore[arg-type]


def test_configs_reject_bad_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timeouts must be positive"):
        OpenAICompatConfig(timeout_s=0)
    with pytest.raises(ValueError, match="dtype"):
        LocalBackendConfig(model_path="x", dtype="int3")
    with pytest.raises(ValueError, match="model folder not found"):
        TransformersBackend(LocalBackendConfig(model_path=str(tmp_path / "missing")))
    with pytest.raises(ValueError, match="temperature"):
        GenerationParams(temperature=-1)
    with pytest.raises(ValueError, match="exactly one of choices or regex"):
        AnswerConstraint()
    with pytest.raises(ValueError, match="invalid regex"):
        AnswerConstraint(regex="[A-")


async def test_ping_names_what_answers(
    vllm_server: VLLMServer, local_backend: TransformersBackend
) -> None:
    remote = OpenAICompatBackend(
        OpenAICompatConfig(base_url=vllm_server.base_url, model=vllm_server.model)
    )
    try:
        assert await remote.ping() == f"{vllm_server.base_url} serves {vllm_server.model}"
    finally:
        await remote.aclose()
    assert (await local_backend.ping()).startswith("in-process model ")


async def test_ping_of_a_dead_server_raises_llm_unavailable() -> None:
    config = OpenAICompatConfig(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m")
    backend = OpenAICompatBackend(config)
    try:
        with pytest.raises(LLMUnavailable, match=r"127\.0\.0\.1"):
            await backend.ping()
    finally:
        await backend.aclose()
