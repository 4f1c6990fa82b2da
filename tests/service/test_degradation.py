"""The LLM down or slow: the graph scorer answers, flagged, and nothing else breaks."""

from __future__ import annotations

from tests.harness.net import free_port


def test_llm_unreachable_falls_back_to_the_graph_scorer(make_client) -> None:
    client = make_client(
        llm_backend="vllm", llm_url=f"http://127.0.0.1:{free_port()}/v1", llm_max_retries=0
    )
    body = client.post("/recommend", json={"user_id": "1", "k": 5}).json()
    assert body["fallback"] is True and len(body["items"]) == 5
    assert body["explanation"].startswith(f'"{body["items"][0]["title"]}" ranks first.')
    assert "someone who also watched" in body["explanation"]
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    assert ready.json()["checks"]["llm"]["ok"] is False
    assert 'r2rec_fallback_total{reason="LLM unavailable"} 1.0' in client.get("/metrics").text


def test_slow_llm_times_out_into_the_fallback(make_client) -> None:
    client = make_client(llm_timeout_s=0.001)
    body = client.post("/recommend", json={"user_id": "1", "k": 3, "explain": True}).json()
    assert body["fallback"] is True
    assert len(body["items"]) == 3


def test_fallback_answers_are_not_cached(make_client, redis_server) -> None:
    client = make_client(
        llm_backend="vllm",
        llm_url=f"http://127.0.0.1:{free_port()}/v1",
        llm_max_retries=0,
        redis_url=redis_server.url,
    )
    request = {"user_id": "2", "k": 3, "explain": False}
    assert client.post("/recommend", json=request).json()["fallback"] is True
    assert client.post("/recommend", json=request).json()["cached"] is False
