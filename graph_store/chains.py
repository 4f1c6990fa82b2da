"""R2Rec chain enumeration and seeded selection, shared byte for byte by every store.

The graph index (`graph_store.index`) fetches only two kinds of raw rows
(``NeighbourRow``: a taste neighbour with the items it shares with the user; ``NextRow``:
an item a neighbour interacted with that the user has not), and this module turns them
into ``Chain`` values. The embedded store runs that index over the whole graph, the Bolt
store over the user's fetched neighbourhood (`graph_store.neighbourhood`), so both return
the same chains for the same data and seed.

Definition (``ChainParams`` holds the bounds):
1. Neighbours arrive ranked by overlap desc, then user id asc (at most ``max_neighbours``).
2. Per neighbour the shown shared items are the user's most recent ones (user ts desc,
   item id desc), at most ``max_shared``; the anchor is the neighbour's latest time on them.
3. Next items of a neighbour: first those after the anchor ("went on to watch", in
   time order: ts asc, then id asc), then the rest, most recent first (ts desc, id
   desc); ``next_per_neighbour`` per neighbour; an item already reached through a
   better-ranked neighbour is skipped. Stores fetch only the first few rows per
   neighbour in that order (``plan_next``), and ``refill`` asks again, up to the sure
   bound, for the rare neighbour that ran short; the result is the same as with all
   rows, while the rows moved per request stay bounded.
4. If the pool exceeds ``max_chains``, a seeded weighted draw without replacement
   (weight = overlap, doubled when ``went_on``; Efraimidis-Spirakis keys with
   ``random.Random(f"{seed}:{user_id}")``) picks them; chains keep pool order.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple

from graph_store.types import Chain, ChainParams, SharedItem


class SharedRow(NamedTuple):
    """An item in the user's window the neighbour also has: (id, title, user ts, their ts)."""

    item_id: str
    title: str
    user_ts: int
    neighbour_ts: int


class NeighbourRow(NamedTuple):
    """A taste neighbour: overlap with the user's window, and the shared items."""

    user_id: str
    overlap: int
    shared: tuple[SharedRow, ...]


class NextRow(NamedTuple):
    """An item the neighbour interacted with (latest ts) that the user has not."""

    neighbour_id: str
    item_id: str
    title: str
    ts: int


class NextRequest(NamedTuple):
    """Ask a store for a neighbour's first ``limit`` next items in ``order_next`` order."""

    neighbour_id: str
    anchor: int
    limit: int


def rank_neighbours(neighbours: Sequence[NeighbourRow], params: ChainParams) -> list[NeighbourRow]:
    return sorted(neighbours, key=lambda n: (-n.overlap, n.user_id))[: params.max_neighbours]


def shown_shared(neighbour: NeighbourRow, params: ChainParams) -> tuple[SharedItem, ...]:
    return tuple(SharedItem(*row) for row in recent_first(neighbour.shared)[: params.max_shared])


def plan_next(neighbours: Sequence[NeighbourRow], params: ChainParams) -> list[NextRequest]:
    """First fetch per neighbour: twice ``next_per_neighbour`` rows (room for a few items
    already reached through better-ranked neighbours); ``refill`` asks again if short."""
    return [
        NextRequest(
            nb.user_id,
            anchor_of(nb, params),
            min(2 * params.next_per_neighbour, params.next_per_neighbour * (rank + 1)),
        )
        for rank, nb in enumerate(rank_neighbours(neighbours, params))
    ]


def refill(
    neighbours: Sequence[NeighbourRow],
    rows: Sequence[NextRow],
    requests: Sequence[NextRequest],
    params: ChainParams,
) -> list[NextRequest]:
    """Neighbours whose fetched rows ran out to de-duplication while more may exist,
    re-asked with the sure bound ``next_per_neighbour * (rank + 1)`` (a neighbour can
    lose at most ``next_per_neighbour`` rows to each better-ranked one)."""
    got: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        got[row.neighbour_id].append(row.item_id)
    limits = {r.neighbour_id: r for r in requests}
    again: list[NextRequest] = []
    reached: set[str] = set()
    for rank, nb in enumerate(rank_neighbours(neighbours, params)):
        fresh = [i for i in got[nb.user_id] if i not in reached][: params.next_per_neighbour]
        reached.update(fresh)
        request = limits[nb.user_id]
        bound = params.next_per_neighbour * (rank + 1)
        short = len(fresh) < params.next_per_neighbour
        if short and len(got[nb.user_id]) == request.limit and request.limit < bound:
            again.append(NextRequest(nb.user_id, request.anchor, bound))
    return again


def anchor_of(neighbour: NeighbourRow, params: ChainParams) -> int:
    return max(s.neighbour_ts for s in shown_shared(neighbour, params))


def recent_first(shared: Sequence[SharedRow]) -> list[SharedRow]:
    """The user's most recent shared items first (ts desc, then item id desc)."""
    return sorted(shared, key=lambda s: (s.user_ts, s.item_id), reverse=True)


def order_next(rows: Sequence[NextRow], anchor: int) -> list[NextRow]:
    after = sorted((r for r in rows if r.ts > anchor), key=lambda r: (r.ts, r.item_id))
    before = sorted(
        (r for r in rows if r.ts <= anchor), key=lambda r: (r.ts, r.item_id), reverse=True
    )
    return after + before


def enumerate_chains(
    user_id: str,
    neighbours: Sequence[NeighbourRow],
    next_rows: Sequence[NextRow],
    params: ChainParams,
) -> list[Chain]:
    """All chains the bounds allow, in neighbour rank order (before the seeded draw)."""
    by_neighbour: dict[str, list[NextRow]] = defaultdict(list)
    for row in next_rows:
        by_neighbour[row.neighbour_id].append(row)
    ranked = rank_neighbours(neighbours, params)
    pool: list[Chain] = []
    reached: set[str] = set()
    for nb in ranked:
        shown = shown_shared(nb, params)
        if len(shown) < 2:  # closure needs two shared items; rows below min_overlap are bugs
            continue
        anchor = max(s.neighbour_ts for s in shown)
        taken = 0
        for row in order_next(by_neighbour.get(nb.user_id, []), anchor):
            if taken == params.next_per_neighbour:
                break
            if row.item_id in reached:
                continue
            reached.add(row.item_id)
            taken += 1
            pool.append(
                Chain(
                    user_id=user_id,
                    shared=shown,
                    neighbour_id=nb.user_id,
                    overlap=nb.overlap,
                    next_item_id=row.item_id,
                    next_title=row.title,
                    next_ts=row.ts,
                    went_on=row.ts > anchor,
                )
            )
    return pool


def select_chains(user_id: str, pool: Sequence[Chain], max_chains: int, seed: int) -> list[Chain]:
    """Seeded weighted draw of ``max_chains`` from ``pool``; result keeps pool order."""
    if len(pool) <= max_chains:
        return list(pool)
    rng = random.Random(f"{seed}:{user_id}")
    keys = []
    for index, chain in enumerate(pool):
        weight = chain.overlap * (2.0 if chain.went_on else 1.0)
        keys.append((rng.random() ** (1.0 / weight), -index))
    chosen = sorted(range(len(pool)), key=lambda i: keys[i], reverse=True)[:max_chains]
    return [pool[i] for i in sorted(chosen)]


def build_chains(
    user_id: str,
    neighbours: Sequence[NeighbourRow],
    next_rows: Sequence[NextRow],
    params: ChainParams,
    seed: int,
) -> list[Chain]:
    pool = enumerate_chains(user_id, neighbours, next_rows, params)
    return select_chains(user_id, pool, params.max_chains, seed)
