"""Every LLM failure falls back to the graph scorer, says why, and shows in /readyz.

A local HTTP server (`tests.reasoning.broken_llm.BrokenLLM`) stands in for an LLM server
that lists its model (its ping succeeds) but answers every completion with a 400 or with
a 200 that is not a completion; the service is the real app on the embedded graph.
"""

from __future__ import annotations

import pytest

from tests.reasoning.broken_llm import ERROR_400, BrokenLLM


@pytest.mark.parametrize(
    ("status", "body", "content_type", "reason"),
    [
        (400, ERROR_400, "application/json", "LLM rejected the request"),
        (200, b"not json", "text/plain", "LLM answered malformed"),
        (200, b"not json", "application/json", "LLM answered malformed"),
        (200, b'{"choices": []}', "application/json", "LLM answered malformed"),
    ],
)
def test_a_broken_llm_falls_back_and_readiness_says_so(
    make_client, status: int, body: bytes, content_type: str, reason: str
) -> None:
    with BrokenLLM(status, body, content_type) as llm:
        client = make_client(llm_backend="vllm", llm_url=llm.base_url, llm_model="m")
        assert client.get("/readyz").json()["checks"]["llm"]["ok"] is True  # not asked yet
        for explain in (False, True):
            reply = client.post("/recommend", json={"user_id": "1", "k": 5, "explain": explain})
            assert reply.status_code == 200, reply.text
            answer = reply.json()
            assert answer["fallback"] is True and answer["fallback_reason"] == reason
            assert len(answer["items"]) == 5
        got = client.get("/users/1/recommendations?k=3&explain=false")
        assert got.status_code == 200 and got.json()["fallback_reason"] == reason
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        llm_check = ready.json()["checks"]["llm"]
        assert llm_check["ok"] is False and reason in llm_check["detail"], llm_check
        metrics = client.get("/metrics").text
        assert f'r2rec_fallback_total{{reason="{reason}"}} 3.0' in metrics
        assert llm.completions >= 3


def test_an_llm_answer_has_no_fallback_reason_and_clears_the_last_failure(make_client) -> None:
    client = make_client()
    recommender = client.app.state.runtime.recommender
    from reasoning.outcomes import LLMOutcome

    recommender.last_llm = LLMOutcome(ok=False, at=0.0, reason="LLM timed out", detail="x")
    assert client.get("/readyz").json()["checks"]["llm"]["ok"] is False
    answer = client.post("/recommend", json={"user_id": "1", "k": 3, "explain": False}).json()
    assert answer["fallback"] is False and answer["fallback_reason"] is None
    ready = client.get("/readyz").json()
    assert ready["checks"]["llm"]["ok"] is True, ready
