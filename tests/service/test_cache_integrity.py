"""The Redis cache never serves what it should not: corrupt or incomplete entries are
deleted and recomputed, and an ingestion missed during an outage is honoured even by a
restarted process (the global epoch, see `service.cache`). All against a real Redis."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from service.main import create_app
from tests.harness.net import free_port, wait_for_port
from tests.harness.redis import RedisServer, RedisUnavailable
from tests.service.conftest import settings_for

REQUEST = {"user_id": "7", "k": 3, "explain": False}
FAR_FUTURE = 4_102_444_800.0  # 2100-01-01: a write time no entry outlives (fixed, so every
# xdist worker collects the same test ids)


def _entries(url: str, user: str) -> dict[str, str]:
    with redis.Redis.from_url(url, decode_responses=True) as client:
        return dict(client.hgetall(f"r2rec:rec:{user}"))


def _overwrite(url: str, user: str, value: bytes) -> None:
    with redis.Redis.from_url(url) as client:
        (field,) = client.hkeys(f"r2rec:rec:{user}")
        client.hset(f"r2rec:rec:{user}", field, value)


@pytest.mark.parametrize(
    "value",
    [
        b"{not json",
        b"",
        b"[1, 2]",
        orjson.dumps({"body": {"user_id": "7"}}),  # no write time
        orjson.dumps({"at": "yesterday", "body": {}}),
        orjson.dumps({"at": FAR_FUTURE, "body": {"user_id": "7"}}),  # fields missing
        orjson.dumps({"at": FAR_FUTURE, "body": {"user_id": "7", "items": "none"}}),
    ],
)
def test_a_corrupt_or_incomplete_entry_is_deleted_and_recomputed(
    make_client, redis_server: RedisServer, value: bytes
) -> None:
    client = make_client(redis_url=redis_server.url)
    user = "7"
    with redis.Redis.from_url(redis_server.url) as direct:
        direct.delete(f"r2rec:rec:{user}")  # entries earlier tests left under older epochs
    first = client.post("/recommend", json=REQUEST).json()
    assert client.post("/recommend", json=REQUEST).json()["cached"] is True
    _overwrite(redis_server.url, user, value)
    again = client.post("/recommend", json=REQUEST)
    assert again.status_code == 200 and again.json()["cached"] is False
    assert again.json()["items"] == first["items"]
    (stored,) = _entries(redis_server.url, user).values()
    assert orjson.loads(stored)["body"]["items"] == first["items"]  # the recomputed answer
    assert client.post("/recommend", json=REQUEST).json()["cached"] is True


class PersistentRedis(RedisServer):
    """A redis-server that keeps its data across a kill (append-only file, fsync always)."""

    folder: Path = Path()

    def restart(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisUnavailable("redis-server not on PATH: run scripts/setup_redis.sh")
        self.process = subprocess.Popen(
            [
                *(binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.folder)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_for_port(self.port, timeout=10):
            self.stop()
            raise RedisUnavailable(f"redis-server did not listen on port {self.port}")


@contextmanager
def _app(tiny_model_dir: Path, url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(tiny_model_dir, redis_url=url))) as client:
        yield client


def test_an_ingestion_during_an_outage_survives_a_restart_of_the_service(
    tiny_model_dir: Path, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Redis killed; an ingestion cannot invalidate; the service restarts (forgetting
    anything it held in memory); Redis comes back with its old entries: none is served."""
    PersistentRedis.folder = tmp_path
    store = PersistentRedis(port=free_port())
    store.restart()
    try:
        with _app(tiny_model_dir, store.url) as client:
            first = client.post("/recommend", json=REQUEST).json()
            assert client.post("/recommend", json=REQUEST).json()["cached"] is True
            store.stop()  # SIGKILL: the entry is in the append-only file
            top = first["items"][0]["item_id"]
            row = {"user_id": "7", "item_id": top, "timestamp": 1_700_000_000}
            assert client.post("/interactions", json={"interactions": [row]}).status_code == 200
        store.restart()
        assert _entries(store.url, "7"), "the old entry came back with Redis"
        with _app(tiny_model_dir, store.url) as client:
            again = client.post("/recommend", json=REQUEST).json()
            assert again["cached"] is False
            assert client.post("/recommend", json=REQUEST).json()["cached"] is True
    finally:
        store.stop()


def test_a_frozen_redis_during_an_ingestion_and_a_restart_serves_nothing_stale(
    tiny_model_dir: Path, redis_server: RedisServer
) -> None:
    """The same with Redis frozen (it keeps its data, answers nothing) rather than killed."""
    store = RedisServer.start()
    try:
        with _app(tiny_model_dir, store.url) as client:
            client.post("/recommend", json=REQUEST)
            assert client.post("/recommend", json=REQUEST).json()["cached"] is True
            assert store.process is not None
            os.kill(store.process.pid, signal.SIGSTOP)
            row = {"user_id": "7", "item_id": "1", "timestamp": 1_750_000_000}
            assert client.post("/interactions", json={"interactions": [row]}).status_code == 200
        with _app(tiny_model_dir, store.url) as client:
            os.kill(store.process.pid, signal.SIGCONT)
            assert client.post("/recommend", json=REQUEST).json()["cached"] is False
    finally:
        if store.process is not None:
            os.kill(store.process.pid, signal.SIGCONT)
        store.stop()


def test_an_answer_computed_before_an_ingestion_is_not_served_after_it(
    make_client, redis_server: RedisServer
) -> None:
    """The lookup names where its answer goes; an ingestion in between moves the user on."""
    client = make_client(redis_url=redis_server.url)
    cache = client.app.state.runtime.cache
    params = {"k": 3, "candidates": None, "explain": False}

    async def race() -> None:
        lookup = await cache.get("7", "v", params)
        await cache.invalidate({"7"})  # an ingestion lands while the answer is computed
        await cache.put(lookup, {"user_id": "7"})
        assert (await cache.get("7", "v", params)).body is None

    assert client.portal is not None
    client.portal.call(race)
