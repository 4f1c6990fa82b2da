"""One request's neighbourhood of the interaction graph, ranked by the embedded store's code.

The Bolt store keeps each node's adjacency as two parallel list properties written in the
same transaction as the edge (``User.adj_items``/``adj_ts``, ``Item.adj_users``/``adj_ts``;
see `graph_store.cypher`). Candidates and chains then cost a few indexed node reads per
request instead of a Cypher traversal of every edge around the user:

1. the user's adjacency gives the recent window (distinct items by latest time, ts desc
   then id desc, the first ``window``);
2. the adjacency of the window items (plus the candidate items, for the chains' "reached a
   candidate" filter) gives every co-interacting user and its overlap;
3. the adjacency of the neighbours the ranking will use gives their items.

Times travel only where the ranking reads them (the user's own edges, and the neighbours'
for chains); the rest of the edges say only who is connected to whom (see ``UNTIMED``).

`NeighbourhoodFetch` drives those steps over any ``fetch(kind, ids)`` callable; the edges
are then loaded into a `MemoryGraphStore`, whose ranking code answers exactly as over the
whole graph because it never looks past these edges (the selection in
`select_neighbours` mirrors `MemoryGraphStore._neighbours`). Titles and attributes are
not part of the adjacency: the caller fetches them for the items in the answer only.

    fetch = NeighbourhoodFetch(user_id, read_adjacency)       # (kind, ids, with_times)
    local = await fetch.for_candidates(CandidateParams())      # None: unknown user
    found = await local._cooccurrence(user_id, 20, CandidateParams(), None)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from graph_store.memory import MemoryGraphStore
from graph_store.types import CandidateParams, ChainParams

Kind = Literal["user", "item"]
# neighbour ids and, when asked for, the edge times (parallel lists)
Adjacency = tuple[Sequence[str], Sequence[int] | None]
FetchAdjacency = Callable[[Kind, list[str], bool], Awaitable[dict[str, Adjacency]]]
# The time given to edges fetched without times. Those edges only say who is connected to
# whom; every edge whose time the ranking reads (the user's own, and the chosen neighbours'
# for chains) is also fetched with its real time, and a pair's latest time wins.
UNTIMED = -(2**62)


def latest_times(adjacency: Adjacency) -> dict[str, int]:
    """Distinct neighbours with their latest edge time."""
    others, times = adjacency
    latest: dict[str, int] = {}
    for other, ts in zip(others, times or [UNTIMED] * len(others), strict=True):
        if ts > latest.get(other, ts - 1):
            latest[other] = ts
    return latest


def recent_window(adjacency: Adjacency, window: int) -> list[str]:
    """A user's ``window`` most recent distinct items (latest ts desc, then id desc).

    >>> recent_window((["a", "b", "a", "c"], [1, 5, 7, 5]), 2)
    ['a', 'c']
    """
    latest = latest_times(adjacency)
    return sorted(latest, key=lambda i: (latest[i], i), reverse=True)[:window]


def select_neighbours(
    user_id: str,
    raters: dict[str, Adjacency],
    window: Sequence[str],
    min_overlap: int,
    k: int,
    must_reach: Collection[str] | None = None,
) -> list[str]:
    """The top-``k`` users sharing >= ``min_overlap`` window items (overlap desc, id asc);
    with ``must_reach``, only users among those ids."""
    overlap: dict[str, int] = defaultdict(int)
    for item in window:
        for other in set(raters.get(item, ((), None))[0]):
            if other != user_id:
                overlap[other] += 1
    chosen = [
        v for v, count in overlap.items()
        if count >= min_overlap and (must_reach is None or v in must_reach)
    ]  # fmt: skip
    return sorted(chosen, key=lambda v: (-overlap[v], v))[:k]


@dataclass
class NeighbourhoodFetch:
    """Fetch one user's neighbourhood in three rounds and load it into a `MemoryGraphStore`."""

    user_id: str
    fetch: FetchAdjacency

    async def for_candidates(self, params: CandidateParams) -> MemoryGraphStore | None:
        """Scores only count who co-interacted: no neighbour needs its times."""
        return await self._load(params.window, 1, params.max_neighbours, None, False)

    async def for_chains(
        self, params: ChainParams, candidates: Collection[str] | None
    ) -> MemoryGraphStore | None:
        """Chains show when the neighbours interacted: their times come along."""
        return await self._load(
            params.window, params.min_overlap, params.max_neighbours, candidates, True
        )

    async def _load(
        self,
        window: int,
        min_overlap: int,
        k: int,
        candidates: Collection[str] | None,
        neighbour_times: bool,
    ) -> MemoryGraphStore | None:
        mine = (await self.fetch("user", [self.user_id], True)).get(self.user_id)
        if mine is None or not mine[0]:
            return None
        recent = recent_window(mine, window)
        wanted = sorted(set(recent) | set(candidates or ()))
        raters = await self.fetch("item", wanted, False)
        reach = None
        if candidates is not None:
            reach = {v for c in candidates for v in raters.get(c, ((), None))[0]}
        chosen = select_neighbours(self.user_id, raters, recent, min_overlap, k, reach)
        theirs = await self.fetch("user", chosen, neighbour_times) if chosen else {}
        edges = _EdgeColumns()
        edges.add_user(self.user_id, mine)
        for user, adjacency in theirs.items():
            edges.add_user(user, adjacency)
        for item, adjacency in raters.items():
            edges.add_item(item, adjacency)
        return edges.store()


class _EdgeColumns:
    """Edge columns gathered from adjacency lists (repeats are dropped by the store)."""

    def __init__(self) -> None:
        self.users: list[np.ndarray] = []
        self.items: list[np.ndarray] = []
        self.times: list[np.ndarray] = []

    def add_user(self, user: str, adjacency: Adjacency) -> None:
        items, times = adjacency
        self.users.append(np.full(len(items), user, dtype=object))
        self.items.append(np.asarray(items, dtype=object))
        self.times.append(_times(times, len(items)))

    def add_item(self, item: str, adjacency: Adjacency) -> None:
        users, times = adjacency
        self.users.append(np.asarray(users, dtype=object))
        self.items.append(np.full(len(users), item, dtype=object))
        self.times.append(_times(times, len(users)))

    def store(self) -> MemoryGraphStore:
        return MemoryGraphStore.from_edges(
            np.concatenate(self.users), np.concatenate(self.items), np.concatenate(self.times)
        )


def _times(times: Sequence[int] | None, n: int) -> np.ndarray:
    return np.full(n, UNTIMED, dtype=np.int64) if times is None else np.asarray(times, np.int64)
