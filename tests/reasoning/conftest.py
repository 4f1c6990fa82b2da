"""Shared fixtures of the reasoning tests: a tiny model, a real vLLM server, both backends.

All are session-scoped and lazy: the tiny model is built once (~5 s) and the vLLM server
(from ``.venv-vllm``, see ``scripts/setup_vllm.sh``) starts once (~45 s) only when a test
asks for it. Without ``.venv-vllm`` the vLLM tests skip, unless ``R2REC_REQUIRE_VLLM`` is
set (CI), in which case they fail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from reasoning.backends import LLMBackend, OpenAICompatBackend, OpenAICompatConfig
from tests.harness.vllm import VLLMServer

BACKEND_KINDS = ["vllm", "local"]


@pytest.fixture(scope="session")
def local_backend(tiny_model_dir: Path) -> LLMBackend:
    from reasoning.backends.transformers_backend import LocalBackendConfig, TransformersBackend

    return TransformersBackend(LocalBackendConfig(model_path=str(tiny_model_dir)))


@pytest_asyncio.fixture
async def vllm_backend(vllm_server: VLLMServer) -> AsyncIterator[OpenAICompatBackend]:
    backend = OpenAICompatBackend(
        OpenAICompatConfig(base_url=vllm_server.base_url, model=vllm_server.model, timeout_s=120)
    )
    yield backend
    await backend.aclose()


@pytest.fixture(params=BACKEND_KINDS)
def backend(request: pytest.FixtureRequest) -> LLMBackend:
    """Each backend contract test runs against the real vLLM server and in-process."""
    fixture = "vllm_backend" if request.param == "vllm" else "local_backend"
    backend: LLMBackend = request.getfixturevalue(fixture)
    return backend
