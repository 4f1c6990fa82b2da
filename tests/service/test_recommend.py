"""POST /recommend and GET /users/{id}/recommendations on the embedded store + tiny model."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def client(tiny_model_dir):
    from fastapi.testclient import TestClient

    from service.main import create_app
    from tests.service.conftest import settings_for

    with TestClient(create_app(settings_for(tiny_model_dir))) as c:
        yield c


def test_scoring_mode_ranks_k_retrieved_unseen_items(client) -> None:
    body = client.post("/recommend", json={"user_id": "1", "k": 5, "explain": False}).json()
    assert [i["rank"] for i in body["items"]] == [1, 2, 3, 4, 5]
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    seen = {e["item"]["item_id"] for e in client.get("/users/1/history?n=200").json()["entries"]}
    assert not seen & {i["item_id"] for i in body["items"]}
    assert body["fallback"] is False and body["cold_start"] is False and body["cached"] is False
    assert body["thoughts"] == [] and body["explanation"].startswith(
        f'"{body["items"][0]["title"]}"'
    )
    assert body["model"] == "tiny-qwen2"  # the folder name when no version is set


def test_explain_mode_returns_the_given_candidates_only_with_evidence(client) -> None:
    given = ["50", "181", "258", "1", "7", "100"]
    body = client.post(
        "/recommend", json={"user_id": "42", "k": 20, "candidates": given, "explain": True}
    ).json()
    assert sorted(i["item_id"] for i in body["items"]) == sorted(given)
    assert body["llm_ms"] > 0 and body["latency_ms"] >= body["llm_ms"]
    for chain in body["evidence"]:
        assert chain["next_item_id"] in given and len(chain["shared_items"]) >= 2


def test_more_than_twenty_candidates_are_all_ranked(client) -> None:
    given = [str(i) for i in range(1, 31)]
    body = client.post(
        "/recommend", json={"user_id": "5", "k": 20, "candidates": given, "explain": False}
    ).json()
    assert len(body["items"]) == 20 and set(i["item_id"] for i in body["items"]) <= set(given)


def test_unknown_user_gets_popular_items_flagged_cold_start(client) -> None:
    body = client.get("/users/stranger/recommendations?k=3").json()
    assert body["cold_start"] is True
    assert [i["item_id"] for i in body["items"]] == ["50", "258", "100"]  # most-rated ML-100K


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"user_id": "bad\tid"}, "user_id"),
        ({"user_id": "1", "k": 0}, "k"),
        ({"user_id": "1", "k": 21}, "k"),
        ({"user_id": "1", "candidates": []}, "candidates"),
        ({"user_id": "1", "candidates": [str(i) for i in range(51)]}, "candidates"),
        ({"user_id": "x" * 257}, "user_id"),
        ({"user_id": "1", "surprise": True}, "surprise"),
    ],
)
def test_invalid_requests_are_422_naming_the_field(client, body, where) -> None:
    reply = client.post("/recommend", json=body)
    assert reply.status_code == 422
    assert where in str(reply.json()["detail"])


def test_unknown_candidate_items_are_422_naming_them(client) -> None:
    reply = client.post("/recommend", json={"user_id": "1", "candidates": ["1", "no-such"]})
    assert reply.status_code == 422
    assert reply.json() == {
        "error": "unknown_items",
        "detail": "unknown candidate item ids: 'no-such'",
    }


def test_duplicate_candidates_count_once(client) -> None:
    given = ["1"] * 60 + ["2"]
    body = client.post("/recommend", json={"user_id": "3", "candidates": given, "explain": False})
    assert body.status_code == 200
    assert sorted(i["item_id"] for i in body.json()["items"]) == ["1", "2"]
