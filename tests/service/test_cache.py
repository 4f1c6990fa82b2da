"""The Redis cache: hits, per-parameter keys, invalidation on ingestion, and Redis faults."""

from __future__ import annotations

from tests.harness.redis import RedisServer

REQUEST = {"user_id": "7", "k": 3, "explain": False}


def test_second_identical_request_is_a_cache_hit(make_client, redis_server) -> None:
    client = make_client(redis_url=redis_server.url)
    first = client.post("/recommend", json=REQUEST).json()
    second = client.post("/recommend", json=REQUEST).json()
    assert first["cached"] is False and second["cached"] is True
    assert second["items"] == first["items"]
    other = client.post("/recommend", json={**REQUEST, "k": 4}).json()
    assert other["cached"] is False  # different parameters, different entry
    metrics = client.get("/metrics").text
    assert 'r2rec_cache_total{result="hit"} 1.0' in metrics
    assert 'r2rec_cache_total{result="miss"} 2.0' in metrics


def test_new_interactions_invalidate_only_that_users_entries(make_client, redis_server) -> None:
    client = make_client(redis_url=redis_server.url)
    client.post("/recommend", json=REQUEST)
    client.post("/recommend", json={**REQUEST, "user_id": "8"})
    top = client.post("/recommend", json=REQUEST).json()["items"][0]["item_id"]
    reply = client.post(
        "/interactions",
        json={"interactions": [{"user_id": "7", "item_id": top, "timestamp": 1_700_000_000}]},
    )
    assert reply.json() == {"received": 1, "new_interactions": 1, "users_invalidated": 1}
    after = client.post("/recommend", json=REQUEST).json()
    assert after["cached"] is False
    assert top not in [i["item_id"] for i in after["items"]]  # now seen: no longer recommended
    assert client.post("/recommend", json={**REQUEST, "user_id": "8"}).json()["cached"] is True


def test_redis_killed_mid_run_serves_uncached_and_loses_no_interaction(
    make_client, fresh_redis: RedisServer
) -> None:
    redis = fresh_redis
    client = make_client(redis_url=redis.url)
    assert client.post("/recommend", json=REQUEST).status_code == 200
    assert client.post("/recommend", json=REQUEST).json()["cached"] is True
    redis.stop()
    down = client.post("/recommend", json=REQUEST)
    assert down.status_code == 200 and down.json()["cached"] is False
    ready = client.get("/readyz").json()
    assert ready["status"] == "degraded" and ready["checks"]["redis"]["ok"] is False
    batch = [
        {"user_id": "7", "item_id": str(i), "timestamp": 1_700_000_000 + i} for i in range(900, 910)
    ]
    assert client.post("/interactions", json={"interactions": batch}).status_code == 200
    history = client.get("/users/7/history?n=10").json()["entries"]
    assert {e["item"]["item_id"] for e in history} == {str(i) for i in range(900, 910)}
    redis.restart()
    assert client.get("/readyz").json()["checks"]["redis"]["ok"] is True
    again = client.post("/recommend", json=REQUEST).json()
    assert again["cached"] is False
    assert not {str(i) for i in range(900, 910)} & {i["item_id"] for i in again["items"]}


def test_invalidation_missed_while_redis_was_unreachable_is_replayed(
    make_client, fresh_redis: RedisServer
) -> None:
    """Redis keeps its data but is unreachable during an ingestion: the stale entry must
    not be served once it is back."""
    import os
    import signal

    redis = fresh_redis
    client = make_client(redis_url=redis.url)
    client.post("/recommend", json=REQUEST)
    assert redis.process is not None
    os.kill(redis.process.pid, signal.SIGSTOP)  # frozen: times out, data kept
    body = {"interactions": [{"user_id": "7", "item_id": "1", "timestamp": 1_750_000_000}]}
    assert client.post("/interactions", json=body).status_code == 200
    os.kill(redis.process.pid, signal.SIGCONT)
    client.get("/readyz")  # recovery is noticed, pending invalidations are flushed
    assert client.post("/recommend", json=REQUEST).json()["cached"] is False
