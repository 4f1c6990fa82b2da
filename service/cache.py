"""Redis cache of recommendations, keyed by (user, model version, request parameters).

Layout (all under ``r2rec:``):

- ``rec:<user>``: one hash per user; a field ``<epoch>:<user version>:<model>:<params
  digest>`` holds ``{"at": write time, "body": response}`` (the TTL is exact per entry).
- ``ver:<user>``: the user's version, ``INCR``-ed by every ingestion of that user (which
  also deletes the user's hash, to free it at once).
- ``epoch``: one global counter that is part of every field.

A lookup reads the epoch, the user's version and the field in one script, and the answer
computed after a miss is stored under the field that lookup named. So an answer computed
from the graph before an ingestion, and stored after it, lands under the old version,
where no later lookup reads it.

Invalidations must survive Redis outages and restarts of this process. Remembering them
in memory is not enough: a process restarted while Redis was down has forgotten them, and
would serve the pre-outage entries once Redis is back. Instead, the epoch is bumped
(``INCR``, so every entry stored before becomes unreachable) whenever invalidations may
have been lost:

- when an invalidation could not be sent (Redis down, a timeout, the breaker open):
  before this process reads or writes the cache again;
- when this process starts: it cannot know whether its predecessor died holding
  invalidations it could not send, so it bumps before its first read or write.

Until its bump has succeeded the process neither reads nor writes the cache. The price is
a cold cache after each restart and after each outage that overlapped an ingestion, for
correctness that needs nothing but Redis itself. (Another replica that never saw the
ingestion can still serve a stale entry between Redis's return and this process's bump,
which happens on its first cache call or /readyz check.)

An entry that is not valid JSON, lacks ``at`` or ``body``, or (checked by the caller
against the response model) lacks a field of the response, is deleted and recomputed.

Redis is optional and may fail at any time: every call degrades to a miss (the request is
served uncached), and a short circuit-breaker stops a dead Redis from costing each
request a timeout.

    cache = RecommendationCache.from_url("redis://127.0.0.1:6379/0", ttl_s=600)
    lookup = await cache.get(user_id, version, params)      # lookup.body: None on a miss
    await cache.put(lookup, body)                           # after computing on a miss
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from typing import Any

import orjson
from redis import asyncio as aioredis
from redis.exceptions import RedisError

KEY_PREFIX = "r2rec:rec:"
VERSION_PREFIX = "r2rec:ver:"
EPOCH_KEY = "r2rec:epoch"
BREAKER_SECONDS = 2.0

# KEYS: epoch, user version, user hash; ARGV: model version and parameter digest.
LOOKUP_SCRIPT = """
local field = (redis.call('GET', KEYS[1]) or '0') .. ':' ..
    (redis.call('GET', KEYS[2]) or '0') .. ':' .. ARGV[1]
return {field, redis.call('HGET', KEYS[3], field)}
"""


def params_digest(params: dict[str, Any]) -> str:
    """A stable short digest of request parameters (key order does not matter)."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Lookup:
    """One cache lookup: the stored body (None on a miss) and where to store an answer
    (``field`` None: do not store, the cache could not be read)."""

    key: str
    field: str | None = None
    body: dict[str, Any] | None = None
    version: str = ""  # the model version the lookup was for


def _decode(raw: str) -> tuple[float, dict[str, Any]] | None:
    """(write time, body) of a stored value, or None if the value is corrupt."""
    try:
        entry = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("body"), dict):
        return None
    at = entry.get("at")
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
        return None
    return float(at), dict(entry["body"])


class RecommendationCache:
    def __init__(self, client: aioredis.Redis, ttl_s: int) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self._down_until = 0.0
        self._epoch_bumped = False  # not yet by this process: see the module docstring
        self._lookup = client.register_script(LOOKUP_SCRIPT)
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

    async def _ensure_epoch(self) -> None:
        """Bump the epoch once if invalidations may have been lost (raises RedisError)."""
        if not self._epoch_bumped:
            await self.client.incr(EPOCH_KEY)
            self._epoch_bumped = True

    async def get(self, user_id: str, version: str, params: dict[str, Any]) -> Lookup:
        """The cached response body if there is a live entry; a corrupt one is deleted."""
        key = KEY_PREFIX + user_id
        if self._skip():
            return Lookup(key, version=version)
        try:
            await self._ensure_epoch()
            field, raw = await self._lookup(
                keys=[EPOCH_KEY, VERSION_PREFIX + user_id, key],
                args=[f"{version}:{params_digest(params)}"],
            )
        except RedisError as err:
            self._failed(err)
            return Lookup(key, version=version)
        self.last_error = None
        if raw is None:
            return Lookup(key, field, version=version)
        entry = _decode(raw)
        if entry is None:
            await self.discard(Lookup(key, field))
            return Lookup(key, field, version=version)
        at, body = entry
        if time.time() - at > self.ttl_s:
            return Lookup(key, field, version=version)
        return Lookup(key, field, body, version)

    async def discard(self, lookup: Lookup) -> None:
        """Delete the entry ``lookup`` found (corrupt, or refused by the caller)."""
        if lookup.field is None:
            return
        try:
            await self.client.hdel(lookup.key, lookup.field)
        except RedisError as err:
            self._failed(err)

    async def put(self, lookup: Lookup, body: dict[str, Any]) -> None:
        """Store ``body`` where ``lookup`` said (nothing if that lookup could not read)."""
        if lookup.field is None or self._skip():
            return
        value = orjson.dumps({"at": time.time(), "body": body})
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hset(lookup.key, lookup.field, value)
                pipe.expire(lookup.key, self.ttl_s)
                await pipe.execute()
        except RedisError as err:
            self._failed(err)

    async def invalidate(self, user_ids: set[str]) -> None:
        """Make every cached entry of these users unreachable; if Redis cannot be told
        now, every entry is made unreachable (the epoch) before the cache is used again."""
        if not user_ids:
            return
        if self._skip():
            self._epoch_bumped = False
            return
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                for user in sorted(user_ids):
                    pipe.incr(VERSION_PREFIX + user)
                    # the version outlives every entry stored under an older one (an
                    # entry's own "at" expires it after ttl_s), so it may then restart
                    pipe.expire(VERSION_PREFIX + user, self.ttl_s + 60)
                    pipe.delete(KEY_PREFIX + user)
                await pipe.execute()
        except RedisError as err:
            self._epoch_bumped = False
            self._failed(err)

    async def ping(self) -> tuple[bool, str]:
        """(ok, detail) for /readyz; bypasses the breaker so recovery shows at once."""
        try:
            await self.client.ping()
            await self._ensure_epoch()
        except RedisError as err:
            self._failed(err)
            return False, self.last_error or "unavailable"
        self._down_until = 0.0
        self.last_error = None
        return True, "ok"
