"""The one graph index: interaction arrays in CSR form, and every ranking both stores run.

A `GraphIndex` is an immutable snapshot of users, items and timestamped interactions,
indexed by user and by item. It answers the reads (history, seen items, popular items)
and the rankings -- taste neighbours, co-occurrence candidates and R2Rec chains -- with
numpy, so that one piece of code defines them for every store:

- the embedded store (`graph_store.memory`) holds one index over the whole graph and
  builds a new one on each write (``GraphIndex.build``);
- the Bolt store (`graph_store.neo4j_store`) fetches one user's neighbourhood
  (`graph_store.neighbourhood`) and ranks it with ``GraphIndex.from_edges``;
- the evaluated "graph-fallback" baseline ranks protocol cases with it.

    index = GraphIndex.from_edges(users, items, ts)           # parallel id/time columns
    index.neighbours("42", window=10, min_overlap=1, k=50)     # [(user id, overlap), ...]
    index.cooccurrence("42", 20, CandidateParams(), among=None)
    index.chains("42", ChainParams(), seed=0, candidates=None)

Layout, per distinct (user, item) pair with its latest ts: grouped by user, most recent
first (ts desc, id desc), and grouped by item; raw edges, unique on (user, item, ts),
grouped by user with the most recent first (the history); items by distinct users desc,
id asc (popular). Neighbours rank by overlap with the user's recent window desc, then
user id asc; candidate scores are overlap-weighted votes, ties broken by item id asc; chain
enumeration and the seeded draw are `graph_store.chains`.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from graph_store.chains import (
    NeighbourRow,
    NextRequest,
    NextRow,
    SharedRow,
    build_chains,
    plan_next,
    refill,
)
from graph_store.types import (
    Candidate,
    CandidateParams,
    Chain,
    ChainParams,
    GraphCounts,
    HistoryEntry,
    Item,
)

IntArray = np.ndarray


def _ranks(ids: Sequence[str]) -> IntArray:
    """Position of each id in ascending string order (ties impossible: ids are unique)."""
    order = sorted(range(len(ids)), key=ids.__getitem__)
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[order] = np.arange(len(ids))
    return ranks


def lexorder(keys: Sequence[IntArray], stable: bool = False) -> IntArray:
    """``np.lexsort(keys)`` (last key primary) as one argsort of a packed int64 key.

    Each key is shifted to start at 0 (or, when its values are sparse, replaced by its
    dense rank) and the keys are packed into one integer, with the position last when
    ``stable`` (equal keys keep their order). numpy sorts that ~3-10x faster than
    ``lexsort``'s merge sort per key. Falls back to ``lexsort`` past 62 bits.

    >>> lexorder([np.array([3, 1, 2]), np.array([0, 1, 0])]).tolist()
    [2, 0, 1]
    """
    n = len(keys[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    packed = np.arange(n, dtype=np.int64) if stable else np.zeros(n, dtype=np.int64)
    span = n if stable else 1
    for key in keys:  # least significant first
        low, width = int(key.min()), int(key.max()) - int(key.min()) + 1
        if width <= 2 * n:
            rank = key - low
        else:
            values, rank = np.unique(key, return_inverse=True)
            width = len(values)
        if span * width >= 2**62:
            return np.lexsort(keys)
        packed += rank.reshape(-1).astype(np.int64) * span
        span *= width
    return np.argsort(packed)


@functools.lru_cache(maxsize=1 << 17)
def _bare_item(item_id: str) -> Item:
    """An item without metadata (items are immutable, so one serves every neighbourhood)."""
    return Item(item_id, "", {})


def _pointers(groups: IntArray, n_groups: int) -> IntArray:
    return np.concatenate(([0], np.cumsum(np.bincount(groups, minlength=n_groups)))).astype(
        np.int64
    )


@dataclass(frozen=True)
class GraphIndex:
    """One immutable snapshot of the graph; build with `build`, `empty` or `from_edges`."""

    user_ids: list[str]
    user_index: dict[str, int]
    user_rank: IntArray
    items: list[Item]
    item_index: dict[str, int]
    item_rank: IntArray
    edge_user: IntArray  # raw edges, unique (user, item, ts), in insertion order
    edge_item: IntArray
    edge_ts: IntArray
    edge_rating: np.ndarray
    hist_ptr: IntArray  # history: edge ids per user, most recent first
    hist_edge: IntArray
    pair_ptr: IntArray  # distinct pairs per user, most recent first
    pair_item: IntArray
    pair_ts: IntArray
    pair_neg_ts: IntArray  # -pair_ts, ascending within a user (for searchsorted)
    by_item_ptr: IntArray  # distinct pairs per item
    by_item_user: IntArray
    by_item_ts: IntArray
    popular_items: IntArray  # item indices with >= 1 user, by users desc then id asc
    popularity: IntArray

    @classmethod
    def build(
        cls,
        user_ids: list[str],
        items: list[Item],
        user: IntArray,
        item: IntArray,
        ts: IntArray,
        rating: np.ndarray,
    ) -> GraphIndex:
        """Index edge columns of user/item indices (earlier rows win on a repeated
        (user, item, ts))."""
        order = lexorder((ts, item, user), stable=True)  # the first occurrence stays first
        u, i, t = user[order], item[order], ts[order]
        keep = np.ones(len(order), dtype=bool)
        keep[1:] = (u[1:] != u[:-1]) | (i[1:] != i[:-1]) | (t[1:] != t[:-1])
        u, i, t = u[keep], i[keep], t[keep]  # sorted by (user, item, ts)
        kept = np.sort(order[keep])  # back to insertion order
        user, item, ts, rating = user[kept], item[kept], ts[kept], rating[kept]
        n_users, n_items = len(user_ids), len(items)
        item_rank = _ranks([it.item_id for it in items])
        hist = lexorder((-item_rank[item], -ts, user))
        # distinct pairs with their latest ts: the last row of each (user, item) run
        last = np.ones(len(u), dtype=bool)
        last[:-1] = (u[:-1] != u[1:]) | (i[:-1] != i[1:])
        pu, pi, pt = u[last], i[last], t[last]
        recency = lexorder((-item_rank[pi], -pt, pu))
        by_item = lexorder((np.arange(len(pi)), pi))  # pairs are in user order already
        popularity = np.bincount(pi, minlength=n_items)
        popular = np.lexsort((item_rank, -popularity))
        return cls(
            user_ids=user_ids,
            user_index={uid: k for k, uid in enumerate(user_ids)},
            user_rank=_ranks(user_ids),
            items=items,
            item_index={it.item_id: k for k, it in enumerate(items)},
            item_rank=item_rank,
            edge_user=user,
            edge_item=item,
            edge_ts=ts,
            edge_rating=rating,
            hist_ptr=_pointers(user, n_users),
            hist_edge=hist,
            pair_ptr=_pointers(pu, n_users),
            pair_item=pi[recency],
            pair_ts=pt[recency],
            pair_neg_ts=-pt[recency],
            by_item_ptr=_pointers(pi, n_items),
            by_item_user=pu[by_item],
            by_item_ts=pt[by_item],
            popular_items=popular[popularity[popular] > 0],
            popularity=popularity,
        )

    @classmethod
    def empty(cls) -> GraphIndex:
        none = np.zeros(0, dtype=np.int64)
        return cls.build([], [], none, none, none, np.zeros(0))

    @classmethod
    def from_edges(cls, users: np.ndarray, items: np.ndarray, ts: np.ndarray) -> GraphIndex:
        """An index over bare ``(user, item, ts)`` id columns (no ratings, no item metadata:
        items get empty titles); used to rank a neighbourhood fetched from a server."""
        user_codes, user_ids = pd.factorize(users)
        item_codes, item_ids = pd.factorize(items)
        return cls.build(
            [str(u) for u in user_ids],
            [_bare_item(str(i)) for i in item_ids],
            user_codes.astype(np.int64),
            item_codes.astype(np.int64),
            np.asarray(ts, dtype=np.int64),
            np.full(len(ts), np.nan),
        )

    def counts(self) -> GraphCounts:
        return GraphCounts(len(self.user_ids), len(self.items), len(self.edge_user))

    def history(self, user_id: str, n: int) -> list[HistoryEntry]:
        """The user's ``n`` most recent interactions (ts desc, item id desc)."""
        u = self.user_index.get(user_id)
        if u is None:
            return []
        start, stop = self.hist_ptr[u], self.hist_ptr[u + 1]
        return [
            HistoryEntry(
                self.items[self.edge_item[e]],
                int(self.edge_ts[e]),
                None if np.isnan(self.edge_rating[e]) else float(self.edge_rating[e]),
            )
            for e in self.hist_edge[start : min(start + n, stop)]
        ]

    def find_items(self, item_ids: Sequence[str]) -> dict[str, Item]:
        """The known items among ``item_ids``."""
        return {i: self.items[self.item_index[i]] for i in item_ids if i in self.item_index}

    def seen(self, user_id: str) -> set[str]:
        """Every item the user interacted with."""
        u = self.user_index.get(user_id)
        if u is None:
            return set()
        return {self.items[i].item_id for i in self._pairs(u)}

    def popular(
        self, n: int, exclude: Collection[str], among: frozenset[str] | None
    ) -> list[Candidate]:
        """Top-n items by distinct users (desc, id asc), minus ``exclude``, within ``among``."""
        found: list[Candidate] = []
        for i in self.popular_items:
            item = self.items[i]
            if item.item_id in exclude or (among is not None and item.item_id not in among):
                continue
            found.append(Candidate(item, int(self.popularity[i]), "popular"))
            if len(found) == n:
                break
        return found

    def neighbours(
        self,
        user_id: str,
        window: int,
        min_overlap: int,
        k: int,
        must_reach: Collection[str] | None = None,
    ) -> list[tuple[str, int]]:
        """Top-k users by the number of the user's ``window`` most recent distinct items
        they share (>= ``min_overlap``; desc, then user id asc), as (user id, overlap);
        with ``must_reach``, only users who interacted with one of those items."""
        u = self.user_index.get(user_id)
        if u is None:
            return []
        reach = None if must_reach is None else frozenset(must_reach)
        users, overlap = self._top_neighbours(u, window, min_overlap, k, reach)
        pairs = zip(users.tolist(), overlap.tolist(), strict=True)
        return [(self.user_ids[v], count) for v, count in pairs]

    def _pairs(self, u: int) -> IntArray:
        """User ``u``'s distinct items, most recent first."""
        return self.pair_item[self.pair_ptr[u] : self.pair_ptr[u + 1]]

    def _top_neighbours(
        self, u: int, window: int, min_overlap: int, k: int, must_reach: frozenset[str] | None
    ) -> tuple[IntArray, IntArray]:
        start = self.pair_ptr[u]
        recent = self.pair_item[start : min(start + window, self.pair_ptr[u + 1])]
        if len(recent) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        voters = np.concatenate(
            [self.by_item_user[self.by_item_ptr[i] : self.by_item_ptr[i + 1]] for i in recent]
        )
        counts = np.bincount(voters, minlength=len(self.user_ids))
        counts[u] = 0
        users = np.flatnonzero(counts >= min_overlap)
        overlap = counts[users]
        keep = np.ones(len(users), dtype=bool)
        if must_reach is not None:
            reach = [self.item_index[c] for c in must_reach if c in self.item_index]
            reached = np.concatenate(
                [np.zeros(0, np.int64)]
                + [self.by_item_user[self.by_item_ptr[c] : self.by_item_ptr[c + 1]] for c in reach]
            )
            keep &= np.isin(users, reached)
        users, overlap = users[keep], overlap[keep]
        top = np.lexsort((self.user_rank[users], -overlap))[:k]
        return users[top], overlap[top]

    def _allowed(self, among: Collection[str]) -> np.ndarray:
        allowed = np.zeros(len(self.items), dtype=bool)
        allowed[[self.item_index[i] for i in among if i in self.item_index]] = True
        return allowed

    def cooccurrence(
        self, user_id: str, n: int, params: CandidateParams, among: frozenset[str] | None
    ) -> list[Candidate]:
        """Top-n items the user has not seen (within ``among``), scored by the overlap of
        every top neighbour who has them (score desc, item id asc; score 0 never shows)."""
        u = self.user_index.get(user_id)
        if u is None:
            return []
        users, overlap = self._top_neighbours(u, params.window, 1, params.max_neighbours, None)
        if len(users) == 0:
            return []
        slices = [self._pairs(v) for v in users]
        weights = np.repeat(overlap, [len(s) for s in slices])
        scores = np.bincount(np.concatenate(slices), weights=weights, minlength=len(self.items))
        scores = scores.astype(np.int64)
        scores[self._pairs(u)] = 0
        if among is not None:
            scores[~self._allowed(among)] = 0
        scored = np.flatnonzero(scores)
        top = scored[np.lexsort((self.item_rank[scored], -scores[scored]))[:n]]
        return [Candidate(self.items[t], int(scores[t]), "co-interaction") for t in top]

    def chains(
        self, user_id: str, params: ChainParams, seed: int, candidates: frozenset[str] | None
    ) -> list[Chain]:
        """Neighbour rows, then a bounded fetch of their next items (`graph_store.chains`)."""
        neighbours = self.chain_neighbours(user_id, params, candidates)
        if not neighbours:
            return []
        requests = plan_next(neighbours, params)
        next_rows = self.next_items(user_id, requests, candidates)
        again = refill(neighbours, next_rows, requests, params)
        if again:
            redo = {r.neighbour_id for r in again}
            next_rows = [r for r in next_rows if r.neighbour_id not in redo]
            next_rows += self.next_items(user_id, again, candidates)
        return build_chains(user_id, neighbours, next_rows, params, seed)

    def chain_neighbours(
        self, user_id: str, params: ChainParams, candidates: frozenset[str] | None
    ) -> list[NeighbourRow]:
        """The chain neighbours with the window items each shares (most recent first)."""
        u = self.user_index.get(user_id)
        if u is None:
            return []
        users, overlap = self._top_neighbours(
            u, params.window, params.min_overlap, params.max_neighbours, candidates
        )
        start = self.pair_ptr[u]
        end = min(start + params.window, self.pair_ptr[u + 1])
        recent, recent_ts = self.pair_item[start:end], self.pair_ts[start:end]
        their_ts = np.full(len(self.items), -1, dtype=np.int64)
        rows = []
        for v, count in zip(users.tolist(), overlap.tolist(), strict=True):
            items = self._pairs(v)
            their_ts[items] = self.pair_ts[self.pair_ptr[v] : self.pair_ptr[v + 1]]
            mine = np.flatnonzero(their_ts[recent] >= 0)[: params.max_shared]
            shared = tuple(
                SharedRow(
                    self.items[recent[k]].item_id,
                    self.items[recent[k]].title,
                    int(recent_ts[k]),
                    int(their_ts[recent[k]]),
                )
                for k in mine.tolist()
            )
            their_ts[items] = -1
            rows.append(NeighbourRow(self.user_ids[v], int(count), shared))
        return rows

    def next_items(
        self, user_id: str, requests: Sequence[NextRequest], candidates: frozenset[str] | None
    ) -> list[NextRow]:
        """Walks each neighbour's recency-ordered pairs outward from the anchor: the part
        after it read backwards is (ts asc, id asc), the rest forwards is (ts desc, id desc)."""
        blocked = np.zeros(len(self.items), dtype=bool)
        blocked[self._pairs(self.user_index[user_id])] = True
        if candidates is not None:
            blocked |= ~self._allowed(candidates)
        rows: list[NextRow] = []
        for req in requests:
            v = self.user_index[req.neighbour_id]
            start, end = int(self.pair_ptr[v]), int(self.pair_ptr[v + 1])
            split = start + int(np.searchsorted(self.pair_neg_ts[start:end], -req.anchor, "left"))
            walk = np.concatenate((np.arange(split - 1, start - 1, -1), np.arange(split, end)))
            for k in walk[~blocked[self.pair_item[walk]]][: req.limit].tolist():
                it = self.items[int(self.pair_item[k])]
                rows.append(NextRow(req.neighbour_id, it.item_id, it.title, int(self.pair_ts[k])))
        return rows
