"""The one graph index: interaction arrays in CSR form, and every ranking both stores run.

A `GraphIndex` is an immutable snapshot of users, items and timestamped interactions,
indexed by user and by item. It answers the reads (history, seen items, popular items)
here and the rankings -- taste neighbours, co-occurrence candidates and R2Rec chains --
in `graph_store.ranking` (a base class of it), with numpy, so that one piece of code
defines them for every store:

- the embedded store (`graph_store.memory`) holds one index over the whole graph and
  builds a new one on each write (``GraphIndex.build``);
- the Bolt store (`graph_store.neo4j_store`) fetches one user's neighbourhood
  (`graph_store.neighbourhood`) and ranks an index built from it (``fetched=True``);
- the evaluated "graph-fallback" baseline ranks protocol cases with it.

    index = GraphIndex.from_edges(users, items, ts)           # parallel id/time columns
    index.neighbours("42", window=10, min_overlap=1, k=50)     # [(user id, overlap), ...]
    index.cooccurrence("42", 20, CandidateParams(), among=None)
    index.chains("42", ChainParams(), seed=0, candidates=None)

Layout, per distinct (user, item) pair with its latest ts: grouped by user, most recent
first (ts desc, id desc), and sorted by (user, item) as one int64 key (``pair_key``: is
this pair there, and when); raw edges, unique on (user, item, ts), grouped by user with
the most recent first (the history); items by distinct users desc, id asc (popular).
The bounded lists of `GraphCaps` (what a request reads): per item its ``item_raters``
most recent edges (``rater_*``: ts desc, earlier edge first on a tie), per user the
distinct items of its ``user_recent`` most recent edges (``recent_*``, same cut, then
ordered like the pairs). Run the tests with
``pytest tests/graph_store/test_index.py tests/graph_store/test_bounded.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from graph_store.ranking import IndexRankings
from graph_store.types import (
    Candidate,
    GraphCaps,
    GraphCounts,
    HistoryEntry,
    Item,
    RatingEvidence,
    TasteParams,
)

_NONE = np.zeros(0, dtype=np.int64)

IntArray = np.ndarray


def _dense(values: IntArray) -> IntArray:
    """Each value's rank among the distinct values (order-preserving, from 0).

    >>> _dense(np.array([50, 7, 50, 9])).tolist()
    [2, 0, 2, 1]
    """
    return np.unique(values, return_inverse=True)[1].reshape(-1).astype(np.int64)


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
def bare_item(item_id: str) -> Item:
    """An item without metadata (items are immutable, so one serves every neighbourhood)."""
    return Item(item_id, "", {})


def _pointers(groups: IntArray, n_groups: int) -> IntArray:
    return np.concatenate(([0], np.cumsum(np.bincount(groups, minlength=n_groups)))).astype(
        np.int64
    )


def _first_per_group(groups: IntArray, cap: int) -> IntArray:
    """Mask of the first ``cap`` rows of each run of equal ``groups`` (sorted input)."""
    if len(groups) == 0:
        return np.zeros(0, dtype=bool)
    starts = np.flatnonzero(np.concatenate(([True], groups[1:] != groups[:-1])))
    run_start = np.repeat(starts, np.diff(np.append(starts, len(groups))))
    return np.arange(len(groups)) - run_start < cap


def _distinct_users(item: IntArray, user: IntArray) -> IntArray:
    """Positions of the first row of each user within each item's run, in order."""
    first = np.unique(item * (int(user.max(initial=0)) + 1) + user, return_index=True)[1]
    return np.sort(first)


def _recent_lists(
    user: IntArray,
    item: IntArray,
    ts: IntArray,
    ts_rank: IntArray,
    item_rank: IntArray,
    n: int,
    cap: int,
) -> tuple[IntArray, IntArray, IntArray]:
    """Per user, the distinct items of its ``cap`` most recent edges (ts desc, earlier edge
    first), each with its latest ts there, ordered ts desc then item id desc; as CSR.
    ``ts_rank``: the times' dense ranks (`_dense`), which the sorts pack."""
    order = lexorder((np.arange(len(user)), -ts_rank, user))
    order = order[_first_per_group(user[order], cap)]
    u, i, t, r = user[order], item[order], ts[order], ts_rank[order]
    by_pair = lexorder((-r, i, u), stable=True)  # first row of a (user, item) run is latest
    keep = np.ones(len(by_pair), dtype=bool)
    pu, pi = u[by_pair], i[by_pair]
    keep[1:] = (pu[1:] != pu[:-1]) | (pi[1:] != pi[:-1])
    pu, pi, pt, pr = pu[keep], pi[keep], t[by_pair][keep], r[by_pair][keep]
    recency = lexorder((-item_rank[pi], -pr, pu))
    return _pointers(pu, n), pi[recency], pt[recency]


@dataclass(frozen=True)
class GraphIndex(IndexRankings):
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
    pair_key: IntArray  # user * n_items + item per distinct pair, ascending
    pair_key_ts: IntArray  # the pair's latest ts, in pair_key order
    caps: GraphCaps
    rater_ptr: IntArray  # per item, its item_raters most recent edges: user, ts
    rater_user: IntArray
    rater_ts: IntArray
    rater_rating: np.ndarray  # the rating of that (latest kept) edge, nan if none
    recent_ptr: IntArray  # per user, the distinct items of its user_recent latest edges
    recent_item: IntArray
    recent_ts: IntArray
    popular_items: IntArray  # item indices with >= 1 user, by users desc then id asc
    popularity: IntArray
    chosen: tuple[tuple[str, int], ...] | None = None  # neighbours given by a server
    fetched: bool = False  # a fetched neighbourhood (see `build`)

    @classmethod
    def build(
        cls,
        user_ids: list[str],
        items: list[Item],
        user: IntArray,
        item: IntArray,
        ts: IntArray,
        rating: np.ndarray,
        caps: GraphCaps = GraphCaps(),  # noqa: B008 (frozen, immutable)
        fetched: bool = False,
    ) -> GraphIndex:
        """Index edge columns of user/item indices (earlier rows win on a repeated
        (user, item, ts)); ``caps`` bound the lists a request reads. A ``fetched``
        neighbourhood (`graph_store.neighbourhood`) holds of each neighbour only what its
        lists say, so its pairs answer what a neighbour has: it skips the history, the
        popular ranking and the rater lists, which nothing asks of it."""
        tr = _dense(ts)  # the times' dense ranks: every sort below packs them, not the times
        order = lexorder((tr, item, user), stable=True)  # the first occurrence stays first
        u, i, t, r = user[order], item[order], ts[order], tr[order]
        keep = np.ones(len(order), dtype=bool)
        keep[1:] = (u[1:] != u[:-1]) | (i[1:] != i[:-1]) | (t[1:] != t[:-1])
        u, i, t, r = u[keep], i[keep], t[keep], r[keep]  # sorted by (user, item, ts)
        kept = np.sort(order[keep])  # back to insertion order
        user, item, ts, rating, tr = user[kept], item[kept], ts[kept], rating[kept], tr[kept]
        n_users, n_items = len(user_ids), len(items)
        item_ids = [it.item_id for it in items]
        item_rank = _ranks(item_ids)
        hist = _NONE if fetched else lexorder((-item_rank[item], -tr, user))
        # distinct pairs with their latest ts: the last row of each (user, item) run
        last = np.ones(len(u), dtype=bool)
        last[:-1] = (u[:-1] != u[1:]) | (i[:-1] != i[1:])
        pu, pi, pt = u[last], i[last], t[last]
        recency = lexorder((-item_rank[pi], -r[last], pu))
        popularity = np.bincount(pi, minlength=n_items)
        popular = _NONE if fetched else np.lexsort((item_rank, -popularity))
        raters = _NONE if fetched else lexorder((np.arange(len(item)), -tr, item))  # ts desc
        raters = raters[_first_per_group(item[raters], caps.item_raters)]  # earlier edge first
        raters = raters[_distinct_users(item[raters], user[raters])]
        recent_ptr, recent_item, recent_ts = _recent_lists(
            user, item, ts, tr, item_rank, n_users, caps.user_recent
        )
        return cls(
            user_ids=user_ids,
            user_index=dict(zip(user_ids, range(n_users), strict=True)),
            user_rank=_ranks(user_ids),
            items=items,
            item_index=dict(zip(item_ids, range(n_items), strict=True)),
            item_rank=item_rank,
            edge_user=user,
            edge_item=item,
            edge_ts=ts,
            edge_rating=rating,
            hist_ptr=_pointers(user[hist], n_users),
            hist_edge=hist,
            pair_ptr=_pointers(pu, n_users),
            pair_item=pi[recency],
            pair_ts=pt[recency],
            pair_key=pu * max(n_items, 1) + pi,
            pair_key_ts=pt,
            caps=caps,
            rater_ptr=_pointers(item[raters], n_items),
            rater_user=user[raters],
            rater_ts=ts[raters],
            rater_rating=rating[raters],
            recent_ptr=recent_ptr,
            recent_item=recent_item,
            recent_ts=recent_ts,
            popular_items=popular[popularity[popular] > 0],
            popularity=popularity,
            fetched=fetched,
        )

    @classmethod
    def empty(cls, caps: GraphCaps = GraphCaps()) -> GraphIndex:  # noqa: B008 (frozen)
        none = np.zeros(0, dtype=np.int64)
        return cls.build([], [], none, none, none, np.zeros(0), caps)

    @classmethod
    def from_edges(
        cls,
        users: np.ndarray,
        items: np.ndarray,
        ts: np.ndarray,
        caps: GraphCaps = GraphCaps(),  # noqa: B008 (frozen, immutable)
    ) -> GraphIndex:
        """An index over bare ``(user, item, ts)`` id columns (no ratings, no item metadata:
        items get empty titles)."""
        user_codes, user_ids = pd.factorize(users)
        item_codes, item_ids = pd.factorize(items)
        return cls.build(
            [str(u) for u in user_ids],
            [bare_item(str(i)) for i in item_ids],
            user_codes.astype(np.int64),
            item_codes.astype(np.int64),
            np.asarray(ts, dtype=np.int64),
            np.full(len(ts), np.nan),
            caps,
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

    def rating_evidence(self, user_id: str, item_id: str, taste: TasteParams) -> RatingEvidence:
        """`RatingEvidence` for the pair: the user's other rated edges, the item's kept
        raters' ratings (minus the user) and the taste neighbours who have the item."""
        u, i = self.user_index.get(user_id), self.item_index.get(item_id)
        mine: tuple[float, ...] = ()
        if u is not None:
            edges = self.hist_edge[self.hist_ptr[u] : self.hist_ptr[u + 1]]
            edges = edges[self.edge_item[edges] != (-1 if i is None else i)]
            rated = self.edge_rating[edges]
            mine = tuple(float(r) for r in rated[~np.isnan(rated)])
        if i is None:
            return RatingEvidence(mine, (), ())
        start, stop = self.rater_ptr[i], self.rater_ptr[i + 1]
        theirs = tuple(
            (self.user_ids[v], float(r))
            for v, r in zip(self.rater_user[start:stop], self.rater_rating[start:stop], strict=True)
            if v != u and not np.isnan(r)
        )
        near = self.neighbours(user_id, taste.window, taste.min_overlap, taste.k, [item_id])
        return RatingEvidence(mine, theirs, tuple(v for v, _ in near))

    def seen(self, user_id: str) -> set[str]:
        """Every item the user interacted with."""
        u = self.user_index.get(user_id)
        if u is None:
            return set()
        return {self.items[i].item_id for i in self._pairs(u)}

    def _pairs(self, u: int) -> IntArray:
        """User ``u``'s distinct items, most recent first."""
        return self.pair_item[self.pair_ptr[u] : self.pair_ptr[u + 1]]

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
