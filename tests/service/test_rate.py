"""POST /rate: the user's rating of an item from the serving model, grounded in the graph's
facts, through the in-process model (here) and vLLM (`test_with_vllm.py`); the item's
mean when the model fails; 4xx with a JSON body for bad input."""

from __future__ import annotations

import math

import pytest

from reasoning.rating_facts import rating_facts, taste_graph, taste_neighbours
from recdata import load_dataset
from tests.reasoning.broken_llm import ERROR_400, BrokenLLM


@pytest.fixture(scope="module")
def expected_facts() -> dict[str, object]:
    """User 2 and Toy Story (item 1, 452 raters: under the store's 512 cap), computed from
    the dataset's frame by the offline path (`reasoning.rating_facts.rating_facts`)."""
    log = load_dataset("ml-100k").interactions
    near = taste_neighbours(taste_graph(log), "2", "1")
    return rating_facts(log, "2", "1", near).__dict__


@pytest.mark.parametrize("explain", [True, False])
def test_the_model_rates_from_the_graph_facts(make_client, expected_facts, explain: bool) -> None:
    client = make_client()
    reply = client.post("/rate", json={"user_id": "2", "item_id": "1", "explain": explain})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["item_id"] == "1" and body["title"] == "Toy Story"
    assert body["basis"] == "model" and body["fallback"] is False
    assert body["fallback_reason"] is None and body["model"] == "tiny-qwen2"
    probs = body["probabilities"]
    assert len(probs) == 5 and math.isclose(sum(probs), 1.0, abs_tol=1e-6)
    assert math.isclose(body["rating"], sum(k * p for k, p in enumerate(probs, 1)))
    assert body["most_likely"] == 1 + probs.index(max(probs))
    got = body["facts"]
    for key, value in expected_facts.items():
        assert got[key] == pytest.approx(value), key
    assert got["neighbour_count"] > 0 and got["user_count"] > 0
    if explain:
        assert isinstance(body["reasoning"], str) and isinstance(body["valid"], bool)
    else:
        assert body["reasoning"] is None and body["valid"] is None


def test_an_unknown_user_is_rated_from_the_item_alone(make_client) -> None:
    body = make_client().post("/rate", json={"user_id": "new-here", "item_id": "1"}).json()
    assert body["facts"]["user_count"] == 0 and body["facts"]["user_mean"] is None
    assert body["facts"]["neighbour_count"] == 0 and body["facts"]["item_count"] == 452


def test_a_failing_model_gives_the_item_mean_and_says_why(make_client, expected_facts) -> None:
    with BrokenLLM(400, ERROR_400, "application/json") as llm:
        client = make_client(llm_backend="vllm", llm_url=llm.base_url, llm_model="m")
        for explain in (True, False):
            reply = client.post("/rate", json={"user_id": "2", "item_id": "1", "explain": explain})
            body = reply.json()
            assert reply.status_code == 200 and body["fallback"] is True
            assert body["fallback_reason"] == "LLM rejected the request"
            assert body["basis"] == "item mean"
            assert body["rating"] == pytest.approx(expected_facts["item_mean"])
            assert body["probabilities"] is None and body["reasoning"] is None
        metrics = client.get("/metrics").text
        assert 'r2rec_fallback_total{reason="LLM rejected the request"} 2.0' in metrics


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        ({"user_id": "2", "item_id": "no-such-item"}, 404, "no-such-item"),
        ({"user_id": "2"}, 422, "item_id"),
        ({"user_id": "2", "item_id": "1", "explain": "yes"}, 422, "explain"),
        ({"user_id": "2", "item_id": "1", "extra": 1}, 422, "extra"),
        ({"user_id": "", "item_id": "1"}, 422, "user_id"),
        ({"user_id": "2", "item_id": "a\nb"}, 422, "item_id"),
    ],
)
def test_bad_input_is_a_4xx_that_names_the_problem(
    make_client, body: dict, status: int, names: str
) -> None:
    reply = make_client().post("/rate", json=body)
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    assert names in reply.text
