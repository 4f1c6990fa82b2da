"""One request's neighbourhood of the interaction graph, as a `GraphIndex` to rank with.

The Bolt store keeps, written in the same transaction as the edge (see
`graph_store.cypher`), each user's adjacency (all its edges, two parallel list
properties) and its recent list (its ``GraphCaps.user_recent`` most recent edges), and
each item its kept raters (its ``GraphCaps.item_raters`` most recent edges). A request
then reads a bounded amount, however big the graph and however heavy the neighbours:

1. the user's adjacency, with times, gives the recent window (distinct items by latest
   time, ts desc then id desc, the first ``window``) and what the user has seen;
2. one query (`NeighbourQuery`, ``cypher.NEIGHBOURS``) counts, on the server, how many
   window items each co-interacting user shares (from the window items' kept raters, so
   O(window x cap) rows), keeps the top ``k`` and returns their overlap and recent lists
   (O(k x cap));
3. when the ranking asks about given items (the window for chains, a candidate list),
   their kept raters are read at the same time as step 2 (``cypher.RATERS``).

What a neighbour has, as the rankings read it (`graph_store.ranking`), is exactly what
these lists say: the items of its recent list, and the items whose kept raters include
it. So the user's edges, the neighbours' recent edges and the neighbours' entries in the
fetched rater lists, indexed as a `GraphIndex` (`graph_store.index`, the embedded
store's index) given the server's neighbours (``chosen``), rank exactly as the embedded
store does over the whole graph. Titles and attributes are not part of the adjacency:
the caller fetches them for the items in the answer only.

    fetch = NeighbourhoodFetch(user_id, read_own, read_neighbours, read_raters)
    local = await fetch.for_candidates(CandidateParams())      # None: unknown user
    found = local.cooccurrence(user_id, 20, CandidateParams(), None)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import chain

import numpy as np
import pandas as pd

from graph_store.index import GraphIndex
from graph_store.types import CandidateParams, ChainParams, GraphCaps

# a user's edges: item ids and times (parallel lists)
TimedAdjacency = tuple[Sequence[str], Sequence[int]]
# a chosen neighbour: its recent edges (ts desc) and its overlap with the user's window
Neighbour = tuple[Sequence[str], Sequence[int], int]
# an item's kept raters: user ids and times (parallel lists, ts desc)
Raters = tuple[Sequence[str], Sequence[int]]


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
    `GraphIndex.neighbours` ranks them."""

    user_id: str
    window: list[str]
    reach: list[str] | None
    min_overlap: int
    k: int


FetchOwn = Callable[[str], Awaitable[TimedAdjacency | None]]
# the chosen neighbours in rank order (overlap desc, id asc)
FetchNeighbours = Callable[[NeighbourQuery], Awaitable[dict[str, Neighbour]]]
# the kept raters of these items (unknown items left out)
FetchRaters = Callable[[list[str]], Awaitable[dict[str, Raters]]]


@dataclass
class NeighbourhoodFetch:
    """Fetch one user's neighbourhood in two rounds and index it as a `GraphIndex`."""

    user_id: str
    own: FetchOwn  # the user's adjacency with times (None: unknown user)
    neighbours: FetchNeighbours  # the chosen neighbours' recent lists and overlap
    raters: FetchRaters  # given items' kept raters
    caps: GraphCaps = GraphCaps()  # noqa: RUF009 (frozen, immutable): the store's caps

    async def for_candidates(
        self, params: CandidateParams, among: Collection[str] | None = None
    ) -> GraphIndex | None:
        """Open candidates are the neighbours' recent items; a given list is scored by
        which neighbours have each item, so its items' raters come along."""
        return await self._load(params.window, 1, params.max_neighbours, None, among, False)

    async def for_chains(
        self, params: ChainParams, candidates: Collection[str] | None
    ) -> GraphIndex | None:
        """Chains read which window items (and candidates) each neighbour has."""
        return await self._load(
            params.window, params.min_overlap, params.max_neighbours, candidates, candidates, True
        )

    async def _load(
        self,
        window: int,
        min_overlap: int,
        k: int,
        reach: Collection[str] | None,
        asked: Collection[str] | None,
        with_window: bool,
    ) -> GraphIndex | None:
        mine = await self.own(self.user_id)
        if mine is None or not mine[0]:
            return None
        recent = recent_window(mine, window)
        query = NeighbourQuery(
            self.user_id, recent, None if reach is None else sorted(reach), min_overlap, k
        )
        lookup = sorted({*(recent if with_window else ()), *(asked or ())})
        if lookup:
            found, listed = await asyncio.gather(self.neighbours(query), self.raters(lookup))
        else:
            found, listed = await self.neighbours(query), {}
        chosen = tuple((v, int(overlap)) for v, (_, _, overlap) in found.items())
        return replace(_index(self.user_id, mine, found, listed, self.caps), chosen=chosen)


def _index(
    user_id: str,
    mine: TimedAdjacency,
    found: Mapping[str, Neighbour],
    listed: Mapping[str, Raters],
    caps: GraphCaps,
) -> GraphIndex:
    """An index over the user's edges, the neighbours' recent edges and, after them, the
    neighbours' entries in the fetched rater lists (older than the recent edges, or a
    repeat of one: each neighbour's recent list comes out as the server's)."""
    owners = [user_id, *found]
    sizes = [len(mine[0]), *(len(items) for items, _, _ in found.values())]
    users = np.repeat(np.array(owners, dtype=object), sizes)
    items = np.fromiter(
        chain(mine[0], *(items for items, _, _ in found.values())), object, sum(sizes)
    )
    times = np.fromiter(chain(mine[1], *(ts for _, ts, _ in found.values())), np.int64, sum(sizes))
    if listed:
        counts = [len(raters) for raters, _ in listed.values()]
        raters = pd.Index(list(chain.from_iterable(r for r, _ in listed.values())), dtype=object)
        keep = raters.isin(list(found))
        rated = np.repeat(np.array(list(listed), dtype=object), counts)[keep]
        rated_ts = np.fromiter(chain.from_iterable(t for _, t in listed.values()), np.int64)
        users = np.concatenate((users, raters.to_numpy()[keep]))
        items = np.concatenate((items, rated))
        times = np.concatenate((times, rated_ts[keep]))
    return GraphIndex.from_edges(users, items, times, caps, fetched=True)
