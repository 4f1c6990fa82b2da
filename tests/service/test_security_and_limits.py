"""API key on writes (and optionally reads), constant-time compare, body size limit."""

from __future__ import annotations

import pytest

INGEST = {"interactions": [{"user_id": "u", "item_id": "1", "timestamp": 1}]}


@pytest.fixture(scope="module")
def secured(tiny_model_dir):
    from fastapi.testclient import TestClient

    from service.main import create_app
    from tests.service.conftest import settings_for

    settings = settings_for(tiny_model_dir, api_key="s3cret", max_body_bytes=4096)
    with TestClient(create_app(settings)) as client:
        yield client


def test_writes_need_the_key(secured) -> None:
    missing = secured.post("/interactions", json=INGEST)
    assert missing.status_code == 401 and "X-API-Key" in missing.json()["detail"]
    wrong = secured.post("/interactions", json=INGEST, headers={"X-API-Key": "s3creT"})
    assert wrong.status_code == 401
    ok = secured.post("/interactions", json=INGEST, headers={"X-API-Key": "s3cret"})
    assert ok.status_code == 200


def test_reads_are_open_unless_configured(secured, make_client) -> None:
    assert secured.get("/items/1").status_code == 200
    strict = make_client(api_key="k", require_key_for_reads=True)
    assert strict.get("/items/1").status_code == 401
    assert strict.get("/items/1", headers={"X-API-Key": "k"}).json()["title"] == "Toy Story"
    assert strict.get("/healthz").status_code == 200  # probes stay open


def test_oversized_bodies_are_413_json(secured) -> None:
    big = {"interactions": [{"user_id": "u", "item_id": "1", "timestamp": i} for i in range(400)]}
    reply = secured.post("/interactions", json=big, headers={"X-API-Key": "s3cret"})
    assert reply.status_code == 413 and reply.json()["error"] == "body_too_large"


def test_ingestion_validates_every_record(secured) -> None:
    headers = {"X-API-Key": "s3cret"}
    bad = {"interactions": [{"user_id": "u", "item_id": "1", "timestamp": -5}]}
    reply = secured.post("/interactions", json=bad, headers=headers)
    assert reply.status_code == 422 and "timestamp" in str(reply.json())
    empty = secured.post("/interactions", json={"interactions": []}, headers=headers)
    assert empty.status_code == 422


def test_ingesting_twice_adds_once_and_items_get_metadata(secured) -> None:
    headers = {"X-API-Key": "s3cret"}
    body = {
        "interactions": [{"user_id": "fresh", "item_id": "new-item", "timestamp": 10}],
        "items": [{"item_id": "new-item", "title": "Brand New", "attributes": {"year": "2026"}}],
    }
    first = secured.post("/interactions", json=body, headers=headers).json()
    second = secured.post("/interactions", json=body, headers=headers).json()
    assert first["new_interactions"] == 1 and second["new_interactions"] == 0
    item = secured.get("/items/new-item").json()
    assert item == {
        "item_id": "new-item",
        "title": "Brand New",
        "attributes": {"year": "2026"},
        "placeholder": False,
    }
    assert secured.get("/items/none-such").status_code == 404
