"""An in-process cache of the Bolt store's bounded node lists, read on every request.

A Bolt request reads the kept raters of about 50 items and the recent lists of up to 50
neighbours (`graph_store.neighbourhood`). On a power-law graph the same popular items and
heavy users come back in almost every request, and sending those lists costs more than
anything the server computes. `ListCache` keeps each list for at most ``life_s`` seconds
(least recently used dropped first past ``size`` entries) and fetches only the missing
ones, in one call. Each entry lives a random share of ``life_s`` (between half and all of
it): entries filled together then expire at different times, so a request refetches a
few lists now and then instead of all of them at once (that burst was the Bolt p99). The
store drops the entries its own writes touch, so a process sees its own writes at once;
another writer's show once the entry expires, within ``life_s`` (as with the item
metadata cache). ``life_s = 0`` turns it off: every list is read from the server each
time.

    cache = ListCache[Raters](life_s=30.0, size=10_000)
    found = await cache.get_many(["i1", "i2"], fetch)   # fetch(["i2"]) if i1 is cached
    cache.drop(["i1"])                                   # after writing to i1
"""

from __future__ import annotations

import random
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Generic, TypeVar

import numpy as np

V = TypeVar("V")


def id_array(values: Sequence[str]) -> np.ndarray:
    """Ids as an object array of interned strings: cached lists share one copy of each
    id (about 8 bytes per entry instead of a string each)."""
    out = np.empty(len(values), dtype=object)
    out[:] = [sys.intern(v) for v in values]
    return out


def time_array(values: Sequence[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


class ListCache(Generic[V]):
    """Values by node id, each kept for at most ``life_s`` seconds; at most ``size``."""

    def __init__(self, life_s: float, size: int) -> None:
        if life_s < 0 or size < 0:
            raise ValueError(f"life_s and size must be >= 0, got {life_s}, {size}")
        self.life_s, self.size = life_s, size
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()  # expiry, value
        self._jitter = random.Random(0)
        self._writes = 0  # drops so far: a fetch that overlapped one is not kept

    async def get_many(
        self, keys: Sequence[str], fetch: Callable[[list[str]], Awaitable[dict[str, V]]]
    ) -> dict[str, V]:
        """The values of ``keys`` (an unknown id is left out): cached ones while fresh, the
        rest from one ``fetch`` of the missing ids, which are then cached."""
        if self.life_s == 0 or self.size == 0:
            return await fetch(list(keys)) if keys else {}
        now, entries, found = time.monotonic(), self._entries, {}
        for key in keys:
            hit = entries.get(key)
            if hit is not None and now < hit[0]:
                entries.move_to_end(key)
                found[key] = hit[1]
        missing = [k for k in dict.fromkeys(keys) if k not in found]
        if missing:
            writes = self._writes
            fetched = await fetch(missing)
            if writes != self._writes:  # a write landed meanwhile: this read may predate it
                return {**found, **fetched}
            for key, value in fetched.items():
                entries[key] = (now + self.life_s * (0.5 + 0.5 * self._jitter.random()), value)
                entries.move_to_end(key)
            found.update(fetched)
            while len(entries) > self.size:
                entries.popitem(last=False)
        return found

    def drop(self, keys: Iterable[str]) -> None:
        """Forget these ids (their lists were just written)."""
        self._writes += 1
        for key in keys:
            self._entries.pop(key, None)

    def clear(self) -> None:
        self._writes += 1
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
