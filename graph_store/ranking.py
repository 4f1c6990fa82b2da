"""The rankings every store runs, over a `GraphIndex`'s bounded lists (#18).

`IndexRankings` is a base class of `graph_store.index.GraphIndex`: taste neighbours,
co-occurrence candidates and the raw rows of R2Rec chains (`graph_store.chains` turns
them into chains). A request reads a bounded amount whatever the graph's size
(``GraphCaps``): the user's ``window`` most recent distinct items, each item's
``item_raters`` most recent raters, and each chosen neighbour's distinct items among its
``user_recent`` most recent edges. Whether the user has seen an item is a binary search
in the sorted pair keys; what a neighbour has is read by walking those lists. So
candidates and chains cost O(window x cap), not O(item degree). Counting and matching
use a table over the id space only while that space is small against the values read
(`tally`, `slots`), else a sort or a search.

Definitions (the same in both stores; with ``GraphCaps.unbounded()`` they are the exact
full-graph answers):
- a neighbour's overlap is the number of window items whose kept raters include it;
  neighbours rank by overlap desc, then user id asc; ``must_reach`` keeps those among the
  kept raters of one of those items;
- a neighbour *has* an item when the item is among its recent items or it is among the
  item's kept raters (`IndexRankings._neighbour_ts`; either gives its latest time there).
  Reading its recent items alone lost 0.025 HR@1 on ML-100K (the neighbours are heavy
  users whose older items matter); the union keeps the pin of
  ``tests/graph_store/test_bounded.py``;
- candidates: every top neighbour votes its overlap for each of its recent items the
  user has not seen (score desc, item id asc); a given list counts, per item, the
  neighbours who have it;
- chain rows: a neighbour's shared items are the window items it has (with its latest
  time there); its next items walk its recent items outward from the anchor (or, for
  given candidates, the candidates it has), as `graph_store.chains` defines.

The Bolt store reads the same lists from the server, counts the neighbours from them
(`graph_store.neighbourhood`) and gives them to its fetched index as ``chosen`` (user
id, overlap, in rank order), so that index ranks exactly as the whole graph's does.
Tests: ``pytest tests/graph_store/test_bounded.py tests/graph_store/test_index.py``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

import numpy as np

from graph_store.chains import (
    NeighbourRow,
    NextRequest,
    NextRow,
    SharedRow,
    build_chains,
    plan_next,
    refill,
)
from graph_store.kernels import (
    ABSENT,
    NONE,
    IntArray,
    gather,
    lookup,
    members,
    run_ranks,
    slots,
    tally,
    top_k,
)
from graph_store.types import (
    Candidate,
    CandidateParams,
    Chain,
    ChainParams,
    GraphCaps,
    Item,
)

Chosen = Sequence[tuple[str, int]]  # neighbours picked elsewhere: (user id, overlap)


class IndexRankings:
    """Rankings over the index's arrays (see the module docstring)."""

    if TYPE_CHECKING:
        user_ids: list[str]
        user_index: dict[str, int]
        user_rank: IntArray
        items: list[Item]
        item_index: dict[str, int]
        item_rank: IntArray
        pair_ptr: IntArray
        pair_item: IntArray
        pair_ts: IntArray
        pair_key: IntArray
        pair_key_ts: IntArray
        caps: GraphCaps
        rater_ptr: IntArray
        rater_user: IntArray
        rater_ts: IntArray
        recent_ptr: IntArray
        recent_item: IntArray
        recent_ts: IntArray
        chosen: Chosen | None
        fetched: bool

    def _window(self, u: int, window: int) -> tuple[IntArray, IntArray]:
        """The user's ``window`` most recent distinct items and their latest times."""
        start = self.pair_ptr[u]
        stop = min(start + window, self.pair_ptr[u + 1])
        return self.pair_item[start:stop], self.pair_ts[start:stop]

    def _has_seen(self, u: int | IntArray, items: IntArray) -> np.ndarray:
        """Whether user ``u`` interacted with each of ``items`` (binary search, no scan)."""
        return self._pair_ts(u, items) > ABSENT

    def _pair_ts(self, u: int | IntArray, items: IntArray) -> IntArray:
        """The latest time of each (``u``, item) pair, ``ABSENT`` where there is none;
        ``u`` and ``items`` broadcast (binary search in the sorted pair keys)."""
        return lookup(self.pair_key, self.pair_key_ts, len(self.items), u, items)

    def _neighbour_ts(self, users: IntArray, items: IntArray) -> IntArray:
        """Users x items: like `_pair_ts`, but only as the bounded lists tell it (what a
        request reads of a neighbour): the item is in the user's recent list, or the user
        is among the item's kept raters. Either gives the user's latest time there
        (``items`` distinct; ``users`` may repeat). Both sides are read by walking those
        lists (O(len x cap), no search in the big arrays). A fetched neighbourhood holds
        of a neighbour only what those lists say about the items asked: its pairs are
        the answer."""
        if self.fetched:
            return self._pair_ts(users[:, None], items[None, :])
        users, back = np.unique(users, return_inverse=True)  # a table needs them distinct
        out = np.full((len(users), len(items)), ABSENT, dtype=np.int64)
        pos, col = gather(self.rater_ptr, items)  # each list holds a user once
        row = slots(self.rater_user[pos], users, len(self.user_ids))
        hit = row >= 0
        out[row[hit], col[hit]] = self.rater_ts[pos[hit]]
        pos, row = gather(self.recent_ptr, users)  # each list holds an item once
        col = slots(self.recent_item[pos], items, len(self.items))
        hit = col >= 0
        row, col = row[hit], col[hit]
        out[row, col] = np.maximum(out[row, col], self.recent_ts[pos[hit]])
        return out[back.reshape(-1)]

    def _item_codes(self, ids: Collection[str]) -> IntArray:
        return np.asarray([self.item_index[i] for i in ids if i in self.item_index], np.int64)

    def _top_neighbours(
        self, u: int, window: int, min_overlap: int, k: int, must_reach: Collection[str] | None
    ) -> tuple[IntArray, IntArray]:
        if self.fetched:
            raise ValueError("a fetched neighbourhood has no rater lists: its neighbours are given")
        recent, _ = self._window(u, window)
        if len(recent) == 0:
            return NONE, NONE
        pos, _ = gather(self.rater_ptr, recent)  # an item lists each rater once
        users, overlap = tally(self.rater_user[pos], len(self.user_ids))
        keep = (users != u) & (overlap >= min_overlap)
        if must_reach is not None:
            reach_pos, _ = gather(self.rater_ptr, self._item_codes(must_reach))
            keep &= members(users, self.rater_user[reach_pos], len(self.user_ids))
        users, overlap = users[keep], overlap[keep]
        top = top_k(overlap, self.user_rank[users], k)
        return users[top], overlap[top]

    def _neighbours_of(
        self, u: int, window: int, min_overlap: int, k: int, must_reach: Collection[str] | None
    ) -> tuple[IntArray, IntArray]:
        """The top neighbours, or those the index was given (``chosen``, by a server)."""
        if self.chosen is None:
            return self._top_neighbours(u, window, min_overlap, k, must_reach)
        known = [(self.user_index[v], c) for v, c in self.chosen if v in self.user_index]
        return (
            np.asarray([v for v, _ in known], np.int64),
            np.asarray([c for _, c in known], np.int64),
        )

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
        with ``must_reach``, only users who interacted with one of those items (both
        among each item's kept raters)."""
        u = self.user_index.get(user_id)
        if u is None:
            return []
        users, overlap = self._top_neighbours(u, window, min_overlap, k, must_reach)
        pairs = zip(users.tolist(), overlap.tolist(), strict=True)
        return [(self.user_ids[v], count) for v, count in pairs]

    def cooccurrence(
        self,
        user_id: str,
        n: int,
        params: CandidateParams,
        among: frozenset[str] | None,
    ) -> list[Candidate]:
        """Top-n items the user has not seen (within ``among``), scored by the overlap of
        every top neighbour who has them (its recent items; for a given list, as
        `_neighbour_ts` says) (score desc, item id asc; score 0 never shows)."""
        u = self.user_index.get(user_id)
        if u is None:
            return []
        users, overlap = self._neighbours_of(u, params.window, 1, params.max_neighbours, None)
        if len(users) == 0:
            return []
        if among is None:  # every recent item of the neighbours votes
            pos, owner = gather(self.recent_ptr, users)
            voted, scores = tally(self.recent_item[pos], len(self.items), overlap[owner])
        else:  # a given list: ask each neighbour about each item
            voted = np.unique(self._item_codes(among))
            has = self._neighbour_ts(users, voted) > ABSENT
            scores = (has * overlap[:, None]).sum(axis=0)
        scores = scores.astype(np.int64)
        keep = (scores > 0) & ~self._has_seen(u, voted)
        voted, scores = voted[keep], scores[keep]
        top = top_k(scores, self.item_rank[voted], n)
        return [
            Candidate(self.items[t], int(s), "co-interaction")
            for t, s in zip(voted[top].tolist(), scores[top].tolist(), strict=True)
        ]

    def chains(
        self,
        user_id: str,
        params: ChainParams,
        seed: int,
        candidates: frozenset[str] | None,
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
        self,
        user_id: str,
        params: ChainParams,
        candidates: frozenset[str] | None,
    ) -> list[NeighbourRow]:
        """The chain neighbours with the window items each shares among its recent items
        (the user's most recent first); one that shows fewer than two is left out."""
        u = self.user_index.get(user_id)
        if u is None:
            return []
        users, overlap = self._neighbours_of(
            u, params.window, params.min_overlap, params.max_neighbours, candidates
        )
        recent, recent_ts = self._window(u, params.window)
        their = self._neighbour_ts(users, recent)  # neighbours x window items
        rows = []
        for row, (v, count) in enumerate(zip(users.tolist(), overlap.tolist(), strict=True)):
            mine = np.flatnonzero(their[row] > ABSENT)[: params.max_shared]
            shared = tuple(
                SharedRow(
                    self.items[recent[k]].item_id,
                    self.items[recent[k]].title,
                    int(recent_ts[k]),
                    int(their[row, k]),
                )
                for k in mine.tolist()
            )
            if len(shared) >= 2:  # closure; under caps a counted item may be out of the list
                rows.append(NeighbourRow(self.user_ids[v], int(count), shared))
        return rows

    def next_items(
        self, user_id: str, requests: Sequence[NextRequest], candidates: frozenset[str] | None
    ) -> list[NextRow]:
        """Walks each neighbour's recent items outward from the anchor: the part after it
        read backwards is (ts asc, id asc), the rest forwards is (ts desc, id desc); the
        first ``limit`` of each walk the user has not seen."""
        if not requests:
            return []
        u = self.user_index[user_id]
        users = np.asarray([self.user_index[r.neighbour_id] for r in requests], np.int64)
        if candidates is None:
            owner, walk = self._walks(u, users, np.asarray([r.anchor for r in requests]))
            codes, times = self.recent_item[walk], self.recent_ts[walk]
        else:
            allowed = np.unique(self._item_codes(candidates))
            allowed = allowed[~self._has_seen(u, allowed)]
            owner, codes, times = self._given_walks(requests, users, allowed)
        first = run_ranks(owner, len(requests))
        take = first < np.asarray([r.limit for r in requests])[owner]
        picked = zip(owner[take].tolist(), codes[take].tolist(), times[take].tolist(), strict=True)
        rows: list[NextRow] = []
        for o, i, t in picked:
            item = self.items[i]
            rows.append(NextRow(requests[o].neighbour_id, item.item_id, item.title, t))
        return rows

    def _given_walks(
        self, requests: Sequence[NextRequest], users: IntArray, allowed: IntArray
    ) -> tuple[IntArray, IntArray, IntArray]:
        """Of the given items, those each neighbour has (one read for them all), walked
        outward from its anchor, as flat (request, item, ts) columns in walk order."""
        when = self._neighbour_ts(users, allowed)
        owner, col = np.nonzero(when > ABSENT)
        ts = when[owner, col]
        after = ts > np.asarray([r.anchor for r in requests])[owner]
        rank = self.item_rank[allowed[col]]
        # per request: after the anchor (ts asc, id asc), then the rest (ts desc, id desc)
        order = np.lexsort((np.where(after, rank, -rank), np.where(after, ts, -ts), ~after, owner))
        return owner[order], allowed[col[order]], ts[order]

    def _walks(self, u: int, users: IntArray, anchors: IntArray) -> tuple[IntArray, IntArray]:
        """Each neighbour's recent list walked outward from its anchor, minus what user
        ``u`` has seen: flat (request, position in the recent lists) in walk order (one
        gather, one seen-check, no loop per neighbour)."""
        pos, owner = gather(self.recent_ptr, users)
        offset = run_ranks(owner, len(users))  # place in its own list
        after = np.bincount(owner[self.recent_ts[pos] > anchors[owner]], minlength=len(users))
        n_after = after[owner]  # the list is ts desc: its first ``n_after`` come after
        step = np.where(offset < n_after, n_after - 1 - offset, offset)
        walk = np.empty_like(pos)
        walk[np.arange(len(pos)) - offset + step] = pos
        unseen = ~self._has_seen(u, self.recent_item[walk])
        return owner[unseen], walk[unseen]
