"""The public graph index: hand-checked neighbours and candidates on the toy graph, and a
neighbourhood fetched the Bolt store's way ranks exactly as the index over the whole graph."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from graph_store.chains import NeighbourRow, NextRequest
from graph_store.index import GraphIndex
from graph_store.memory import MemoryGraphStore
from graph_store.neighbourhood import (
    NeighbourhoodFetch,
    RaterLists,
    Raters,
    TimedAdjacency,
    recent_window,
)
from graph_store.types import Candidate, CandidateParams, Chain, ChainParams, GraphCaps
from tests.graph_store.conftest import toy_frames
from tests.graph_store.test_equivalence import random_frames


def test_toy_neighbours_and_cooccurrence() -> None:
    index = MemoryGraphStore.from_frames(*toy_frames()).index
    # a's window m3 m2 m1: b shares m1 m2, c shares m1
    assert index.neighbours("a", window=10, min_overlap=1, k=5) == [("b", 2), ("c", 1)]
    assert index.neighbours("a", window=10, min_overlap=2, k=5) == [("b", 2)]
    assert index.neighbours("a", window=1, min_overlap=1, k=5) == []  # m3: only a has it
    assert index.neighbours("a", 10, 1, 5, must_reach=["m4"]) == [("b", 2)]
    assert index.neighbours("nobody", 10, 1, 5) == []
    found = index.cooccurrence("a", 5, CandidateParams(), None)
    assert [(c.item.item_id, c.score, c.source) for c in found] == [
        ("m5", 3, "co-interaction"),  # b (2) + c (1)
        ("m4", 2, "co-interaction"),
    ]
    only = index.cooccurrence("a", 5, CandidateParams(), frozenset({"m4"}))
    assert [c.item.item_id for c in only] == ["m4"]
    assert [c.item.item_id for c in index.popular(2, {"m1"}, None)] == ["m2", "m5"]


def _serve(inter: pd.DataFrame, caps: GraphCaps):
    """The three reads of the Bolt store, answered in Python from the frame the way the
    server's lists hold it (`graph_store.cypher`): adjacency in write order; recent and
    rater lists ts desc, an earlier write first, cut to the caps."""
    rows = list(inter[["user_id", "item_id", "timestamp"]].itertuples(index=False))
    edges = list(dict.fromkeys((str(u), str(i), int(t)) for u, i, t in rows))
    latest_first = sorted(range(len(edges)), key=lambda k: (-edges[k][2], k))
    recent: dict[str, list[tuple[str, int]]] = {}
    raters: dict[str, list[tuple[str, int]]] = {}
    for k in latest_first:
        u, i, t = edges[k]
        if len(recent.setdefault(u, [])) < caps.user_recent:
            recent[u].append((i, t))
        if len(raters.setdefault(i, [])) < caps.item_raters:
            raters[i].append((u, t))

    async def own(user_id: str) -> TimedAdjacency | None:
        mine = [(i, t) for u, i, t in edges if u == user_id]
        return ([i for i, _ in mine], [t for _, t in mine]) if mine else None

    async def recent_lists(user_ids: list[str]) -> dict[str, TimedAdjacency]:
        return {
            v: ([i for i, _ in recent[v]], [t for _, t in recent[v]])
            for v in user_ids
            if v in recent
        }

    async def listed(item_ids: list[str]) -> dict[str, Raters]:
        return {
            i: ([u for u, _ in raters[i]], [t for _, t in raters[i]])
            for i in item_ids
            if i in raters
        }

    return own, listed, recent_lists


def _ids(found: Sequence[Candidate]) -> list[tuple[str, int, str]]:
    return [(c.item.item_id, c.score, c.source) for c in found]


def _untitled(chains: Sequence[Chain]) -> list[tuple[object, ...]]:
    """Chains without titles (a fetched neighbourhood carries ids only)."""
    return [
        (
            c.neighbour_id,
            c.overlap,
            c.went_on,
            c.next_item_id,
            c.next_ts,
            tuple((s.item_id, s.user_ts, s.neighbour_ts) for s in c.shared),
        )
        for c in chains
    ]


def _rows(rows: Sequence[NeighbourRow]) -> list[tuple[object, ...]]:
    return [
        (r.user_id, r.overlap, tuple((s.item_id, s.user_ts, s.neighbour_ts) for s in r.shared))
        for r in rows
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("seed", "caps"), [(7, GraphCaps()), (3, GraphCaps()), (5, GraphCaps(4, 5))]
)
async def test_fetched_neighbourhood_ranks_as_the_whole_index(seed: int, caps: GraphCaps) -> None:
    """Also with caps that bite: what a neighbour has is what its lists say."""
    inter, items = random_frames(seed)
    full = MemoryGraphStore.from_frames(inter, items, caps).index
    own, listed, recent_lists = _serve(inter, caps)
    restrict = frozenset(f"i{k}" for k in range(0, 60, 3))
    chain_params = ChainParams(window=6, max_neighbours=4, max_chains=3)
    compared = 0
    for user in [f"u{u}" for u in range(40)] + ["cold"]:
        fetch = NeighbourhoodFetch(user, own, listed, recent_lists, caps)
        for params in (CandidateParams(), CandidateParams(window=8, max_neighbours=6)):
            for among in (None, restrict):
                local = await fetch.for_candidates(params, among)
                if local is None:
                    assert full.cooccurrence(user, 10, params, None) == []
                    continue
                assert isinstance(local, GraphIndex)
                assert list(local.chosen or ()) == (
                    full.neighbours(user, params.window, 1, params.max_neighbours)
                )
                assert _ids(local.cooccurrence(user, 10, params, among)) == _ids(
                    full.cooccurrence(user, 10, params, among)
                ), (user, params, among)
        for chain_p, among in ((ChainParams(), None), (chain_params, restrict)):
            local = await fetch.for_chains(chain_p, among)
            if local is None:
                continue
            assert _rows(local.chain_neighbours(user, chain_p, among)) == _rows(
                full.chain_neighbours(user, chain_p, among)
            )
            for chain_seed in (0, 1):
                got = local.chains(user, chain_p, chain_seed, among)
                assert _untitled(got) == _untitled(full.chains(user, chain_p, chain_seed, among))
                compared += len(got)
    assert compared > 50


def test_from_edges_drops_repeated_edges_and_keeps_bare_items() -> None:
    users = np.array(["u", "u", "v", "v"], dtype=object)
    items = np.array(["a", "a", "a", "b"], dtype=object)
    index = GraphIndex.from_edges(users, items, np.array([1, 1, 2, 3]))
    assert index.counts().interactions == 3
    assert index.find_items(["a", "zz"])["a"].title == ""
    assert [c.item.item_id for c in index.cooccurrence("u", 5, CandidateParams(), None)] == ["b"]


@pytest.mark.parametrize("caps", [GraphCaps(), GraphCaps(4, 5)])
def test_top_neighbours_from_rater_lists_match_the_index(caps: GraphCaps) -> None:
    """The client-side count the Bolt store runs gives `GraphIndex.neighbours`, with ties
    at the k-th count, a reach filter, and the user among the raters."""
    inter, items = random_frames(seed=5)
    full = MemoryGraphStore.from_frames(inter, items, caps).index
    own, listed, _ = _serve(inter, caps)
    reach = [f"i{k}" for k in range(0, 60, 7)]
    checked = 0
    for user in [f"u{u}" for u in range(40)]:
        mine = asyncio.run(own(user))
        assert mine is not None
        window = recent_window(mine, 8)
        fetched = asyncio.run(listed(sorted({*window, *reach})))
        for first, min_overlap, k in ((window, 1, 3), ((), 1, 50), (window, 2, 4), ((), 2, 4)):
            lists = RaterLists.of(fetched, first)  # the window's raters first, or not
            for must in (None, reach):
                got, codes = lists.top_neighbours(user, window, min_overlap, k, must)
                assert lists.users[codes].tolist() == [v for v, _ in got]
                assert got == full.neighbours(user, 8, min_overlap, k, must), (user, k, must)
                checked += len(got)
    assert checked > 500


def test_a_neighbour_asked_twice_gets_the_same_rows_twice() -> None:
    """What a neighbour has is read through tables over the users asked: a repeated user
    must not lose what only an item's rater list says (here b's m5, past its recent cap)."""
    users = np.array(["a", "a", "b", "b", "b", "c"], dtype=object)
    items = np.array(["m1", "m2", "m1", "m5", "m4", "m6"], dtype=object)
    index = GraphIndex.from_edges(users, items, np.array([1, 2, 1, 5, 9, 1]), GraphCaps(1, 1))
    asked = [NextRequest("b", 0, 3)] * 2
    rows = index.next_items("a", asked, frozenset({"m5"}))
    assert [(r.neighbour_id, r.item_id) for r in rows] == [("b", "m5"), ("b", "m5")]
