"""LLM backends behind one async interface (:class:`LLMBackend`).

    from reasoning.backends import make_backend, GenerationParams
    llm = make_backend("vllm", base_url="http://127.0.0.1:8000/v1")        # OpenAI-compatible
    llm = make_backend("local", model_path=".r2rec/models/smollm2-135m-instruct")  # in-process
    gens = await llm.generate([[{"role": "user", "content": "Hi"}]], GenerationParams())
    await llm.aclose()

``kind`` "vllm" (alias "openai") takes :class:`OpenAICompatConfig` fields; "local" takes
:class:`~reasoning.backends.transformers_backend.LocalBackendConfig` fields (torch and
transformers are imported only then). See :mod:`reasoning.backends.base` for the contract.
"""

from __future__ import annotations

from typing import Any, Literal

from reasoning.backends.base import (
    AnswerConstraint,
    Conversation,
    Generation,
    GenerationParams,
    LLMBackend,
    LLMBadResponse,
    LLMError,
    LLMRequestError,
    LLMTimeout,
    LLMUnavailable,
    Message,
    continue_with,
)
from reasoning.backends.openai_compat import OpenAICompatBackend, OpenAICompatConfig

BackendKind = Literal["vllm", "openai", "local"]


def make_backend(kind: BackendKind, **options: Any) -> LLMBackend:
    """Build a backend of ``kind`` from its config fields (see the config dataclasses)."""
    if kind in ("vllm", "openai"):
        return OpenAICompatBackend(OpenAICompatConfig(**options))
    if kind == "local":
        from reasoning.backends.transformers_backend import LocalBackendConfig, TransformersBackend

        return TransformersBackend(LocalBackendConfig(**options))
    raise ValueError(f"unknown backend kind {kind!r}; use 'vllm' or 'local'")


__all__ = [
    "AnswerConstraint",
    "BackendKind",
    "Conversation",
    "Generation",
    "GenerationParams",
    "LLMBackend",
    "LLMBadResponse",
    "LLMError",
    "LLMRequestError",
    "LLMTimeout",
    "LLMUnavailable",
    "Message",
    "OpenAICompatBackend",
    "OpenAICompatConfig",
    "continue_with",
    "make_backend",
]
