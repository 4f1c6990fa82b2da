"""One request's neighbourhood of the interaction graph, as a `GraphIndex` to rank with.

The Bolt store keeps, written in the same transaction as the edge (see
`graph_store.cypher`), each user's adjacency (all its edges, two parallel list
properties) and its recent list (its ``GraphCaps.user_recent`` most recent edges), and
each item its kept raters (its ``GraphCaps.item_raters`` most recent edges). A request
then reads a bounded amount, however big the graph and however heavy the neighbours:

1. the user's adjacency, with times, gives the recent window (distinct items by latest
   time, ts desc then id desc, the first ``window``) and what the user has seen;
2. the kept raters of the window items (and of the items the ranking asks about: the
   reach items of chains, a candidate list), O(window x cap) entries; the client counts
   how many window items each of those users shares and keeps the top ``k``
   (`RaterLists.top_neighbours`), as `GraphIndex.neighbours` does over the whole graph;
3. the chosen neighbours' recent lists, O(k x cap) entries.

Steps 2 and 3 read lists that the same popular items and heavy users repeat from request
to request; the Bolt store serves them through `graph_store.list_cache`.

What a neighbour has, as the rankings read it (`graph_store.ranking`), is exactly what
these lists say: the items of its recent list, and the items whose kept raters include
it. So the user's edges, the neighbours' recent edges and the neighbours' entries in the
fetched rater lists, indexed as a `GraphIndex` (`graph_store.index`, the embedded
store's index) given the chosen neighbours (``chosen``), rank exactly as the embedded
store does over the whole graph. Titles and attributes are not part of the adjacency:
the caller fetches them for the items in the answer only.

    fetch = NeighbourhoodFetch(user_id, read_own, read_raters, read_recent)
    local = await fetch.for_candidates(CandidateParams())      # None: unknown user
    found = local.cooccurrence(user_id, 20, CandidateParams(), None)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from graph_store.index import GraphIndex, bare_item
from graph_store.kernels import gather
from graph_store.types import CandidateParams, ChainParams, GraphCaps

# ids and times as the driver sends them, or as arrays (cached lists)
Ids = Sequence[str] | np.ndarray
Times = Sequence[int] | np.ndarray
# a user's edges: item ids and times (parallel)
TimedAdjacency = tuple[Ids, Times]
# a chosen neighbour: its recent edges (ts desc) and its overlap with the user's window
Neighbour = tuple[Ids, Times, int]
# an item's kept raters: user ids and times (parallel, ts desc)
Raters = tuple[Ids, Times]


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
class RaterLists:
    """Fetched kept-rater lists, their users coded once (``pd.factorize`` of every entry):
    the neighbour count and the index build share the codes instead of hashing the
    same ids twice.

    >>> lists = RaterLists.of({"m1": (["a", "b", "c"], [3, 2, 1]), "m2": (["b", "a"], [4, 3])})
    >>> lists.users.tolist(), lists.codes.tolist()
    (['a', 'b', 'c'], [0, 1, 2, 1, 0])
    """

    number: dict[str, int]  # item id -> its list's number
    bounds: np.ndarray  # list n's entries are [bounds[n], bounds[n + 1])
    codes: np.ndarray  # each entry's user, as a position in ``users``
    ts: np.ndarray  # each entry's time
    users: np.ndarray  # the distinct users, in order of first entry

    @classmethod
    def of(cls, raters: Mapping[str, Raters], first: Sequence[str] = ()) -> RaterLists:
        """Code ``raters``; the lists of the ``first`` items come first, so the users
        they hold get the lowest codes (`top_neighbours` counts over those codes only)."""
        raters = {**{i: raters[i] for i in first if i in raters}, **raters}
        ids = [np.asarray(users, dtype=object) for users, _ in raters.values()]
        bounds = np.concatenate(([0], np.cumsum([len(x) for x in ids], dtype=np.int64)))
        if bounds[-1] == 0:
            none = np.zeros(0, dtype=np.int64)
            return cls(dict.fromkeys(raters, 0), bounds, none, none, np.zeros(0, dtype=object))
        codes, users = pd.factorize(np.concatenate(ids))
        ts = np.concatenate([np.asarray(t, dtype=np.int64) for _, t in raters.values()])
        number = dict(zip(raters, range(len(ids)), strict=True))
        return cls(number, bounds, codes.astype(np.int64), ts, np.asarray(users, dtype=object))

    def entries(self, item_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the entries of these items' lists (items without one left out),
        list after list, and the place in ``item_ids`` of each entry's item."""
        known = [(k, self.number[i]) for k, i in enumerate(item_ids) if i in self.number]
        if not known:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        place, lists = (np.asarray(x, dtype=np.int64) for x in zip(*known, strict=True))
        pos, owner = gather(self.bounds, lists)
        return pos, place[owner]

    def top_neighbours(
        self,
        user_id: str,
        window: Sequence[str],
        min_overlap: int,
        k: int,
        reach: Collection[str] | None = None,
    ) -> tuple[list[tuple[str, int]], np.ndarray]:
        """`GraphIndex.neighbours` from the window items' kept raters: the users (not
        ``user_id``) sharing >= ``min_overlap`` distinct window items, top ``k`` by that
        count desc then id asc, as (user id, overlap); with ``reach``, only users among the
        kept raters of one of those items. Also their codes (positions in ``users``).

        >>> lists = RaterLists.of({"m1": (["a", "b", "c"], [3, 2, 1]), "m2": (["b", "a"], [4, 3])})
        >>> lists.top_neighbours("a", ["m1", "m2"], 1, 5)[0]
        [('b', 2), ('c', 1)]
        """
        pos, owner = self.entries(window)
        if len(pos) == 0 or k <= 0:
            return [], np.zeros(0, dtype=np.int64)
        codes = self.codes[pos]
        n = int(codes.max()) + 1  # every window rater's code is below (all, with ``first``)
        has = np.zeros((len(window), n), dtype=bool)  # a rater listed twice counts once
        has[owner, codes] = True
        shared = has.sum(axis=0)
        keep = shared >= max(min_overlap, 1)
        keep[np.flatnonzero(self.users[:n] == user_id)] = False
        if reach is not None:
            reached = self.codes[self.entries(list(reach))[0]]
            reaches = np.zeros(n, dtype=bool)
            reaches[reached[reached < n]] = True
            keep &= reaches
        chosen = np.flatnonzero(keep)
        if len(chosen) > k:  # those at or above the k-th largest count, ties kept for the ids
            kth = np.partition(shared[chosen], len(chosen) - k)[len(chosen) - k]
            chosen = chosen[shared[chosen] >= kth]
        keys = zip((-shared[chosen]).tolist(), self.users[chosen].tolist(), chosen, strict=True)
        top = sorted(keys)[:k]
        return [(v, -minus) for minus, v, _ in top], np.asarray([c for *_, c in top], np.int64)


FetchOwn = Callable[[str], Awaitable[TimedAdjacency | None]]
# the kept raters of these items (unknown items left out)
FetchRaters = Callable[[list[str]], Awaitable[dict[str, Raters]]]
# the recent lists of these users (unknown users left out)
FetchRecent = Callable[[list[str]], Awaitable[dict[str, TimedAdjacency]]]


@dataclass
class NeighbourhoodFetch:
    """Fetch one user's neighbourhood in three reads and index it as a `GraphIndex`."""

    user_id: str
    own: FetchOwn  # the user's adjacency with times (None: unknown user)
    raters: FetchRaters  # given items' kept raters
    recent: FetchRecent  # given users' recent lists
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
        wanted = sorted({*recent, *(reach or ()), *(asked or ())})
        listed = RaterLists.of(await self.raters(wanted), first=recent)
        chosen, codes = listed.top_neighbours(self.user_id, recent, min_overlap, k, reach)
        lists = await self.recent([v for v, _ in chosen]) if chosen else {}
        found = {v: (*lists.get(v, ((), ())), overlap) for v, overlap in chosen}
        indexed = sorted({*(recent if with_window else ()), *(asked or ())})
        local = _index(self.user_id, mine, found, (listed, codes, indexed), self.caps)
        return replace(local, chosen=tuple(chosen))


def _index(
    user_id: str,
    mine: TimedAdjacency,
    found: Mapping[str, Neighbour],
    rated: tuple[RaterLists, np.ndarray, list[str]],
    caps: GraphCaps,
) -> GraphIndex:
    """An index over the user's edges, the neighbours' recent edges and, after them, the
    neighbours' entries in the rater lists of the ``rated`` items (the lists, the found
    neighbours' codes in them, the items; older than the recent edges, or a repeat of
    one: each neighbour's recent list comes out as the server's). The owners are
    distinct, so their codes are their positions; items are coded by first appearance,
    as `GraphIndex.from_edges` would code these columns."""
    owners = [user_id, *found]
    lists = [(mine[0], mine[1]), *((items, ts) for items, ts, _ in found.values())]
    users = np.repeat(np.arange(len(owners), dtype=np.int64), [len(i) for i, _ in lists])
    items = [np.asarray(i, dtype=object) for i, _ in lists]
    times = [np.asarray(t, dtype=np.int64) for _, t in lists]
    raters, codes, rated_items = rated
    pos, place = raters.entries(rated_items)
    if len(pos):
        slot = np.zeros(len(raters.users), dtype=np.int64)  # 0: the user or anyone else
        slot[codes] = np.arange(1, len(codes) + 1)  # the found neighbours, in order
        owner = slot[raters.codes[pos]]
        keep = owner > 0
        users = np.concatenate((users, owner[keep]))
        items.append(np.asarray(rated_items, dtype=object)[place[keep]])
        times.append(raters.ts[pos[keep]])
    item_codes, item_ids = pd.factorize(np.concatenate(items))
    return GraphIndex.build(
        owners,
        list(map(bare_item, item_ids)),
        users,
        item_codes.astype(np.int64),
        np.concatenate(times),
        np.full(len(users), np.nan),
        caps,
        fetched=True,
    )
