"""Redis cache of recommendations, keyed by (user, model version, request parameters).

Each user's entries live in one Redis hash ``r2rec:rec:<user>`` whose fields are
``<model version>:<parameter digest>``; a value carries its own write time so the TTL is
exact per entry. New interactions invalidate a user with one ``DEL``.

Redis is optional and may fail at any time: every call degrades to a miss (the request is
served uncached), a short circuit-breaker stops a dead Redis from costing each request a
timeout, and invalidations that could not be sent are remembered and replayed as soon as
Redis answers again, so a recovered Redis never serves a result older than the user's
newest interactions.

    cache = RecommendationCache.from_url("redis://127.0.0.1:6379/0", ttl_s=600)
    hit = await cache.get(user_id, version, params)      # None on miss or Redis down
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import orjson
from redis import asyncio as aioredis
from redis.exceptions import RedisError

KEY_PREFIX = "r2rec:rec:"
BREAKER_SECONDS = 2.0


def params_digest(params: dict[str, Any]) -> str:
    """A stable short digest of request parameters (key order does not matter)."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


class RecommendationCache:
    def __init__(self, client: aioredis.Redis, ttl_s: int) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self._down_until = 0.0
        self._pending_invalidations: set[str] = set()
        self.last_error: str | None = None

    @classmethod
    def from_url(cls, url: str, ttl_s: int, timeout_s: float = 0.25) -> RecommendationCache:
        client = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True
        )
        return cls(client, ttl_s)

    async def close(self) -> None:
        await self.client.aclose()

    def _skip(self) -> bool:
        return time.monotonic() < self._down_until

    def _failed(self, err: Exception) -> None:
        self._down_until = time.monotonic() + BREAKER_SECONDS
        self.last_error = f"{type(err).__name__}: {err}"

    async def _flush_pending(self) -> None:
        if self._pending_invalidations:
            users = sorted(self._pending_invalidations)
            await self.client.delete(*(KEY_PREFIX + u for u in users))
            self._pending_invalidations.difference_update(users)

    async def get(
        self, user_id: str, version: str, params: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The cached response body, or None (miss, expired, or Redis unavailable)."""
        if self._skip():
            return None
        try:
            await self._flush_pending()
            raw = await self.client.hget(KEY_PREFIX + user_id, f"{version}:{params_digest(params)}")
        except RedisError as err:
            self._failed(err)
            return None
        self.last_error = None
        if raw is None:
            return None
        entry = orjson.loads(raw)
        if time.time() - float(entry["at"]) > self.ttl_s:
            return None
        return dict(entry["body"])

    async def put(
        self, user_id: str, version: str, params: dict[str, Any], body: dict[str, Any]
    ) -> None:
        if self._skip():
            return
        key = KEY_PREFIX + user_id
        value = orjson.dumps({"at": time.time(), "body": body})
        try:
            await self._flush_pending()
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hset(key, f"{version}:{params_digest(params)}", value)
                pipe.expire(key, self.ttl_s)
                await pipe.execute()
        except RedisError as err:
            self._failed(err)

    async def invalidate(self, user_ids: set[str]) -> None:
        """Drop every cached entry of these users now, or as soon as Redis is back."""
        if not user_ids:
            return
        self._pending_invalidations.update(user_ids)
        if self._skip():
            return
        try:
            await self._flush_pending()
        except RedisError as err:
            self._failed(err)

    async def ping(self) -> tuple[bool, str]:
        """(ok, detail) for /readyz; bypasses the breaker so recovery shows at once."""
        try:
            await self.client.ping()
            await self._flush_pending()
        except RedisError as err:
            self._failed(err)
            return False, self.last_error or "unavailable"
        self._down_until = 0.0
        self.last_error = None
        return True, "ok"
