"""One request's neighbourhood of the interaction graph, as a `GraphIndex` to rank with.

The Bolt store keeps each user's adjacency as two parallel list properties, and each
item its bounded rater list (the ``GraphCaps.item_raters`` most recent edges), written in
the same transaction as the edge (see `graph_store.cypher`). Candidates and chains then
cost two indexed reads per request instead of a Cypher traversal of every edge around
the user:

1. the user's adjacency, with times, gives the recent window (distinct items by latest
   time, ts desc then id desc, the first ``window``);
2. one query (`NeighbourQuery`, ``cypher.NEIGHBOURS``) counts, on the server, how many
   window items each co-interacting user shares (from the window items' bounded rater
   lists, so O(window x cap) rows), keeps the top ``k`` and returns their adjacency and
   overlap.

The user's edges and the neighbours' edges are then indexed as a `GraphIndex`
(`graph_store.index`, the embedded store's index) that is given the server's
neighbours (``chosen``: they were counted over the rater lists, which the local index
does not hold), and it scores and walks only their edges exactly as the embedded store
does over the whole graph (`graph_store.ranking`). Times travel only where the
ranking reads them (the user's own edges, and the neighbours' for chains and for open
candidates, whose votes come from each neighbour's most recent edges; see
``UNTIMED``). Titles and attributes are not part of the adjacency: the caller fetches
them for the items in the answer only.

    fetch = NeighbourhoodFetch(user_id, read_own, read_neighbours)
    local = await fetch.for_candidates(CandidateParams())      # None: unknown user
    found = local.cooccurrence(user_id, 20, CandidateParams(), None)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import chain

import numpy as np

from graph_store.index import GraphIndex
from graph_store.types import CandidateParams, ChainParams, GraphCaps

# neighbour ids and, when asked for, the edge times (parallel lists)
Adjacency = tuple[Sequence[str], Sequence[int] | None]
TimedAdjacency = tuple[Sequence[str], Sequence[int]]
# a chosen neighbour: its adjacency and its overlap with the user's window
Neighbour = tuple[Sequence[str], Sequence[int] | None, int]
# The time given to edges fetched without times (the neighbours' edges, for candidates):
# they only say who is connected to whom, and nothing that reads them looks at the time.
UNTIMED = -(2**62)


def recent_window(adjacency: TimedAdjacency, window: int) -> list[str]:
    """A user's ``window`` most recent distinct items (latest ts desc, then id desc).

    >>> recent_window((["a", "b", "a", "c"], [1, 5, 7, 5]), 2)
    ['a', 'c']
    """
    latest: dict[str, int] = {}
    for item, ts in zip(*adjacency, strict=True):
        if ts > latest.get(item, ts - 1):
            latest[item] = ts
    return sorted(latest, key=lambda i: (latest[i], i), reverse=True)[:window]


@dataclass(frozen=True)
class NeighbourQuery:
    """Which neighbours to fetch: those sharing >= ``min_overlap`` distinct ``window``
    items with the user (and, when ``reach`` is given, who interacted with one of those
    items), the top ``k`` by shared items desc then id asc, as
    `GraphIndex.neighbours` ranks them; with their edge times if ``with_ts``."""

    user_id: str
    window: list[str]
    reach: list[str] | None
    min_overlap: int
    k: int
    with_ts: bool


FetchOwn = Callable[[str], Awaitable[TimedAdjacency | None]]
# the chosen neighbours in rank order (overlap desc, id asc)
FetchNeighbours = Callable[[NeighbourQuery], Awaitable[dict[str, Neighbour]]]


@dataclass
class NeighbourhoodFetch:
    """Fetch one user's neighbourhood in two rounds and index it as a `GraphIndex`."""

    user_id: str
    own: FetchOwn  # the user's adjacency with times (None: unknown user)
    neighbours: FetchNeighbours  # the chosen neighbours' adjacency and overlap
    caps: GraphCaps = GraphCaps()  # noqa: RUF009 (frozen, immutable): the store's caps

    async def for_candidates(
        self, params: CandidateParams, among: Collection[str] | None = None
    ) -> GraphIndex | None:
        """Open candidates come from the neighbours' most recent edges (times needed); a
        given list is scored by who has each item, so no neighbour needs its times."""
        return await self._load(params.window, 1, params.max_neighbours, None, among is None)

    async def for_chains(
        self, params: ChainParams, candidates: Collection[str] | None
    ) -> GraphIndex | None:
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
    ) -> GraphIndex | None:
        mine = await self.own(self.user_id)
        if mine is None or not mine[0]:
            return None
        reach = None if candidates is None else sorted(candidates)
        query = NeighbourQuery(
            self.user_id, recent_window(mine, window), reach, min_overlap, k, neighbour_times
        )
        found = await self.neighbours(query)
        by_user = {self.user_id: mine, **{v: (items, ts) for v, (items, ts, _) in found.items()}}
        chosen = tuple((v, int(overlap)) for v, (_, _, overlap) in found.items())
        return replace(_index(by_user, self.caps), chosen=chosen)


def _index(by_user: Mapping[str, Adjacency], caps: GraphCaps) -> GraphIndex:
    """An index over these users' adjacency lists (repeated edges are dropped)."""
    lengths = [len(items) for items, _ in by_user.values()]
    users = np.repeat(np.array(list(by_user), dtype=object), lengths)
    items = np.fromiter(
        chain.from_iterable(items for items, _ in by_user.values()), object, sum(lengths)
    )
    times = [_times(ts, n) for (_, ts), n in zip(by_user.values(), lengths, strict=True)]
    return GraphIndex.from_edges(users, items, np.concatenate(times), caps)


def _times(times: Sequence[int] | None, n: int) -> np.ndarray:
    return np.full(n, UNTIMED, dtype=np.int64) if times is None else np.asarray(times, np.int64)
