"""The service against the real vLLM server: both modes, and concurrent requests."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from tests.harness.vllm import require_vllm, run_vllm_server
from tests.service.conftest import (
    partner_fitted,
    rating_model_folder,
    settings_for,
    vllm_settings,
)


@pytest.fixture(scope="module")
def vllm_client(tiny_model_dir, vllm_server):
    settings = vllm_settings(tiny_model_dir, vllm_server)
    with TestClient(create_app(settings)) as client:
        yield client


def test_both_modes_through_vllm(vllm_client) -> None:
    for explain in (False, True):
        body = vllm_client.post("/recommend", json={"user_id": "3", "k": 5, "explain": explain})
        assert body.status_code == 200
        payload = body.json()
        assert payload["fallback"] is False and payload["model"] == "tiny"
        assert len(payload["items"]) == 5 and payload["llm_ms"] > 0
    ready = vllm_client.get("/readyz").json()
    assert ready["status"] == "ok" and ready["checks"]["llm"]["ok"] is True


def test_concurrent_requests_all_succeed_without_fallback(vllm_client) -> None:
    def ask(user: int) -> dict:
        reply = vllm_client.post("/recommend", json={"user_id": str(user), "k": 3, "explain": True})
        assert reply.status_code == 200
        return reply.json()

    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(ask, range(10, 18)))
    assert all(not b["fallback"] for b in bodies)
    assert len({b["user_id"] for b in bodies}) == 8


def test_rate_through_vllm(vllm_client) -> None:
    for explain in (True, False):
        reply = vllm_client.post("/rate", json={"user_id": "2", "item_id": "1", "explain": explain})
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["fallback"] is False and body["basis"] == "model" and body["model"] == "tiny"
        assert abs(sum(body["probabilities"]) - 1.0) < 1e-6 and 1 <= body["rating"] <= 5
        assert (body["reasoning"] is not None) == explain


def test_the_rating_model_through_vllm_reads_as_in_process(
    tiny_model_dir, vllm_server, tmp_path
) -> None:
    """The rating model served by vLLM (as its second model name; here the tiny model the
    server holds) gives the in-process head's distribution, blended the same way."""
    folder = rating_model_folder(tiny_model_dir, tmp_path / "rating")
    bodies = []
    for settings in (
        vllm_settings(
            tiny_model_dir, vllm_server, rating_model_path=folder, rating_llm_model="tiny"
        ),
        settings_for(tiny_model_dir, rating_model_path=folder),
    ):
        with TestClient(create_app(settings)) as client:
            partner_fitted(client)
            reply = client.post("/rate", json={"user_id": "2", "item_id": "1"})
            assert reply.status_code == 200, reply.text
            bodies.append(reply.json())
    served, local = bodies
    assert served["basis"] == local["basis"] == "blend" and served["fallback"] is False
    assert served["probabilities"] == pytest.approx(local["probabilities"], abs=2e-3)
    assert served["baseline_rating"] == pytest.approx(local["baseline_rating"])
    assert served["reasoning"] == local["reasoning"]


@pytest.fixture(scope="module")
def tiny_rating_adapter(tiny_model_dir, tmp_path_factory) -> tuple[Path, Path]:
    """(adapter, merged folder): a random LoRA on the tiny model (non-zero, so it changes
    the logits), and the tiny model with it merged in, as a published rating folder."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("rating-lora")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    lora = LoraConfig(
        r=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], init_lora_weights=False
    )
    peft_model: Any = get_peft_model(model, lora)
    peft_model.save_pretrained(root / "adapter")
    merged = rating_model_folder(tiny_model_dir, root / "merged")
    peft_model.merge_and_unload().save_pretrained(merged)
    return root / "adapter", merged


def test_the_rating_adapter_as_a_vllm_lora_module_reads_as_the_merged_model(
    tiny_model_dir, tiny_rating_adapter
) -> None:
    """The deployment of docker/vllm-entrypoint.sh: vLLM serves the base model with the
    rating adapter as LoRA module "rating"; /rate through it equals the merged model in
    process, and differs from the base model (the adapter is applied)."""
    require_vllm()
    adapter, merged = tiny_rating_adapter
    lora = ["--enable-lora", "--max-lora-rank", "8", "--lora-modules", f"rating={adapter}"]
    bodies = {}
    with run_vllm_server(tiny_model_dir, name="tiny", extra_args=lora) as server:
        for name, settings in (
            ("lora", vllm_settings(tiny_model_dir, server, rating_model_path=merged)),
            ("base", vllm_settings(tiny_model_dir, server, rating_model_path=merged)),
            ("merged", settings_for(tiny_model_dir, rating_model_path=merged)),
        ):
            model = {"lora": "rating", "base": "tiny"}.get(name)
            settings = settings.model_copy(update={"rating_llm_model": model})
            with TestClient(create_app(settings)) as client:
                partner_fitted(client)
                reply = client.post("/rate", json={"user_id": "2", "item_id": "1"})
                assert reply.status_code == 200, reply.text
                bodies[name] = reply.json()
    assert bodies["lora"]["basis"] == "blend" and bodies["lora"]["fallback"] is False
    lora_probs, merged_probs = bodies["lora"]["probabilities"], bodies["merged"]["probabilities"]
    assert lora_probs == pytest.approx(merged_probs, abs=2e-3)
    assert (
        max(abs(a - b) for a, b in zip(bodies["base"]["probabilities"], merged_probs, strict=True))
        > 1e-2
    )
