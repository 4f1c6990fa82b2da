"""Service fixtures: a tiny in-process model, a real Redis, and app factories."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings
from tests.harness.redis import RedisServer, RedisUnavailable
from tests.harness.vllm import VLLMServer


def _start_redis() -> RedisServer:
    """A real redis-server; skips the test where none is installed (unless servers are
    required: then the missing server fails it)."""
    try:
        return RedisServer.start()
    except RedisUnavailable as err:
        if os.environ.get("R2REC_REQUIRE_SERVERS"):
            raise
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = _start_redis()
    yield server
    server.stop()


@pytest.fixture
def fresh_redis() -> Iterator[RedisServer]:
    """A private redis-server for one test, free to stop, freeze and restart."""
    server = _start_redis()
    yield server
    server.stop()


def settings_for(tiny_model_dir: Path, **overrides: object) -> Settings:
    """Embedded ML-100K graph, the tiny model, short reasoning: fast on CPU. No rate
    limit: every TestClient request comes from one address (tests of the limit set it)."""
    base: dict[str, object] = {
        "model_path": tiny_model_dir,
        "max_reasoning_tokens": 16,
        "chains_per_request": 3,
        "rate_limit_per_s": 0.0,
    }
    return Settings(**{**base, **overrides})  # type: ignore[arg-type]


def vllm_settings(tiny_model_dir: Path, server: VLLMServer, **overrides: object) -> Settings:
    """`settings_for`, answered by the real vLLM ``server`` (generous timeout: CPU)."""
    return settings_for(
        tiny_model_dir,
        llm_backend="vllm",
        llm_url=server.base_url,
        llm_model=server.model,
        llm_timeout_s=120,
        **overrides,
    )


@pytest.fixture
def make_client(tiny_model_dir: Path) -> Iterator:
    clients: list[TestClient] = []

    def make(**overrides: object) -> TestClient:
        client = TestClient(create_app(settings_for(tiny_model_dir, **overrides)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def talkative_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model, except that it never writes whitespace-only tokens: the random
    tiny model's greedy thoughts are blank lines, which show nothing to stream. Its output
    embedding is untied and the rows of those tokens zeroed (logit 0, below the best)."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("models") / "talkative"
    shutil.copytree(tiny_model_dir, out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    model.config.tie_word_embeddings = False
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=False)
    embeddings = model.get_input_embeddings()
    assert isinstance(embeddings, torch.nn.Embedding)
    head.weight.data = embeddings.weight.data.clone()
    for token in range(len(tokenizer)):
        text = str(tokenizer.decode([token]))
        if text and not text.strip() and token not in tokenizer.all_special_ids:
            head.weight.data[token].zero_()
    model.lm_head = head
    model.save_pretrained(out)
    return out


def rating_model_folder(tiny_model_dir: Path, out: Path, partner: str = "bias") -> Path:
    """A published rating model's folder (`training.rating.publish`'s layout): the tiny
    model as the head, a card blending it 0.4 with ``partner``."""
    import json
    import shutil

    shutil.copytree(tiny_model_dir, out)
    card = {
        "run": "tiny-head",
        "reads": "template",
        "blend_with": partner,
        "blend_weight": 0.4,
        "blend_params": {"factors": 4, "reg": 5.0} if partner == "mf" else {},
        "published_unix": 7,
    }
    (out / "rating-card.json").write_text(json.dumps(card))
    return out


def partner_fitted(client: TestClient, timeout_s: float = 60.0) -> None:
    """Wait for the rating model's partner to be fitted (a start-up task)."""
    import time

    deadline = time.monotonic() + timeout_s
    while client.app.state.runtime.rating.fitted_unix is None:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the rating partner was not fitted in time"
        time.sleep(0.1)


def assert_fused_as_in_process(
    settings: Settings, folder: Path, tiny_model_dir: Path, candidates: list[str], atol: float
) -> None:
    """/recommend under ``settings`` ranks user 1's ``candidates`` with the fused ranker at
    ``folder`` exactly as a Recommender in process does, on the same log and model, with
    scores equal to ``atol``."""
    import asyncio

    import numpy as np

    from graph_store.memory import MemoryGraphStore
    from reasoning.backends.transformers_backend import LocalBackendConfig, TransformersBackend
    from reasoning.fused import FusedRanker
    from reasoning.recommender import Recommender, RecommenderConfig
    from recdata import load_dataset

    with TestClient(create_app(settings)) as client:
        request = {"user_id": "1", "candidates": candidates, "explain": True}
        answer = client.post("/recommend", json=request)
        assert answer.status_code == 200, answer.text
        body = answer.json()
    assert body["model"].startswith("fused:run@")
    assert not body["fallback"] and body["valid"] and body["thoughts"]
    served = {i["item_id"]: i["score"] for i in body["items"]}
    data = load_dataset("ml-100k")
    store = MemoryGraphStore.from_frames(data.interactions, data.items)
    local = TransformersBackend(LocalBackendConfig(model_path=str(tiny_model_dir)))
    fused = FusedRanker.load(folder)
    again = asyncio.run(
        Recommender(store, local, RecommenderConfig(), fused).recommend("1", candidates, False)
    )
    top = again.items[: len(body["items"])]  # the response keeps the top k
    assert [i.item_id for i in top] == [i["item_id"] for i in body["items"]]
    np.testing.assert_allclose([served[i.item_id] for i in top], [i.score for i in top], atol=atol)
