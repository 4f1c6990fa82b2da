"""`graph_store.list_cache.ListCache`: hits, expiry, the size bound, drops, and a read
that overlapped a write is not kept."""

from __future__ import annotations

import asyncio

import pytest

from graph_store.list_cache import ListCache


class Server:
    """Answers fetches from a dict and records what was asked."""

    def __init__(self, values: dict[str, int]) -> None:
        self.values = values
        self.asked: list[list[str]] = []

    async def fetch(self, ids: list[str]) -> dict[str, int]:
        self.asked.append(list(ids))
        return {i: self.values[i] for i in ids if i in self.values}


@pytest.mark.asyncio
async def test_fetches_only_the_missing_ids_once() -> None:
    server, cache = Server({"a": 1, "b": 2, "c": 3}), ListCache[int](60.0, 10)
    assert await cache.get_many(["a", "b"], server.fetch) == {"a": 1, "b": 2}
    assert await cache.get_many(["b", "c", "nobody", "c"], server.fetch) == {"b": 2, "c": 3}
    assert server.asked == [["a", "b"], ["c", "nobody"]]  # an unknown id is not cached
    assert await cache.get_many(["a", "b", "c"], server.fetch) == {"a": 1, "b": 2, "c": 3}
    assert len(server.asked) == 2


@pytest.mark.asyncio
async def test_entries_expire_and_the_least_recently_used_go_first() -> None:
    server, cache = Server({k: ord(k) for k in "abc"}), ListCache[int](0.2, 2)
    await cache.get_many(["a", "b"], server.fetch)
    await cache.get_many(["a"], server.fetch)  # a is now the most recently used
    await cache.get_many(["c"], server.fetch)  # evicts b
    assert len(cache) == 2
    await cache.get_many(["a", "b"], server.fetch)
    assert server.asked[-1] == ["b"]
    server.values["a"] = 0
    await asyncio.sleep(0.25)
    assert await cache.get_many(["a"], server.fetch) == {"a": 0}


@pytest.mark.asyncio
async def test_drop_and_a_write_during_a_read() -> None:
    server, cache = Server({"a": 1}), ListCache[int](60.0, 10)
    await cache.get_many(["a"], server.fetch)
    server.values["a"] = 2
    cache.drop(["a"])
    assert await cache.get_many(["a"], server.fetch) == {"a": 2}

    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(ids: list[str]) -> dict[str, int]:
        found = await server.fetch(ids)  # read before the write below
        started.set()
        await release.wait()
        return found

    cache.clear()
    reading = asyncio.create_task(cache.get_many(["a"], slow))
    await started.wait()
    server.values["a"] = 3
    cache.drop(["a"])  # the writer's drop lands while the read is in flight
    release.set()
    assert await reading == {"a": 2}  # the caller gets what was read ...
    assert await cache.get_many(["a"], server.fetch) == {"a": 3}  # ... but it was not kept


@pytest.mark.asyncio
async def test_life_zero_reads_every_time() -> None:
    server, cache = Server({"a": 1}), ListCache[int](0.0, 10)
    for _ in range(3):
        assert await cache.get_many(["a"], server.fetch) == {"a": 1}
    assert len(server.asked) == 3 and len(cache) == 0
    assert await cache.get_many([], server.fetch) == {}
    with pytest.raises(ValueError, match="must be >= 0"):
        ListCache[int](-1.0, 10)
