"""Same data + same seed => the embedded and the Bolt store give the same answers (and the
Bolt store's item cache does not change them)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from graph_store.base import GraphStoreBase
from graph_store.memory import MemoryGraphStore
from graph_store.neo4j_store import Neo4jConfig, Neo4jGraphStore
from graph_store.types import CandidateParams, ChainParams, ItemRecord, NewInteraction
from tests.graph_store.conftest import StoreFactory

pytestmark = pytest.mark.asyncio


def random_frames(seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """40 users x 60 items, skewed popularity, coarse timestamps (many ties), re-watches."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, 61)
    rows = []
    for u in range(40):
        for i in rng.choice(
            60, size=int(rng.integers(3, 25)), replace=False, p=weights / weights.sum()
        ):
            rows.append((f"u{u}", f"i{i}", int(rng.integers(0, 30)), float(rng.integers(1, 6))))
    for uid, iid, t, r in rows[::17]:
        rows.append((uid, iid, t + 5, r))  # same pair later: a second edge
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    items = pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(60)],
            "title": [f"Film {k}" for k in range(60)],
            "genres": ["Drama" if k % 2 else "Comedy" for k in range(60)],
        }
    )
    return inter, items


@pytest.fixture
def bolt_only(bolt_config: Neo4jConfig | None) -> Neo4jConfig:
    """The Bolt server's configuration; the embedded-store run of a test is skipped."""
    if bolt_config is None:
        pytest.skip("Bolt stores only")
    return bolt_config


async def test_memory_and_bolt_agree(backend: str, make_store: StoreFactory) -> None:
    if backend == "memory":
        pytest.skip("compares memory against a Bolt backend")
    inter, items = random_frames()
    mem = MemoryGraphStore.from_frames(inter, items)
    bolt = await make_store(inter, items)
    assert await mem.counts() == await bolt.counts()
    cparams = CandidateParams(window=8, max_neighbours=6)
    chain_params = [
        ChainParams(),
        ChainParams(window=6, max_neighbours=4, max_chains=3, next_per_neighbour=1),
    ]
    restrict = {f"i{k}" for k in range(0, 60, 3)}
    rare = {f"i{k}" for k in range(40, 60, 5)}  # few users reached these: the filter bites
    n_chains = 0
    for user in [f"u{u}" for u in range(40)] + ["cold"]:
        assert await mem.history(user, 12) == await bolt.history(user, 12), user
        assert await mem.candidates(user, 10) == await bolt.candidates(user, 10), user
        assert await mem.candidates(user, 5, cparams) == await bolt.candidates(user, 5, cparams)
        assert await mem.candidates(user, 4, among=restrict) == await bolt.candidates(
            user, 4, among=restrict
        )
        for params in chain_params:
            for seed in (0, 1):
                chains = await mem.chains(user, params, seed)
                assert chains == await bolt.chains(user, params, seed), (user, params, seed)
                n_chains += len(chains)
            for among in (restrict, rare):
                only = await mem.chains(user, params, 0, candidates=among)
                assert only == await bolt.chains(user, params, 0, candidates=among), user
                assert all(c.next_item_id in among for c in only)
    assert n_chains > 100  # the comparison covered real chains, not empty lists


async def _assert_same_rankings(mem: GraphStoreBase, bolt: GraphStoreBase, users: list[str]):
    params = ChainParams(window=6, max_neighbours=4, max_chains=3)
    for user in users:
        assert await mem.candidates(user, 10) == await bolt.candidates(user, 10), user
        assert await mem.chains(user, params, 3) == await bolt.chains(user, params, 3), user


async def test_ingested_edges_keep_the_adjacency_lists_in_step(
    backend: str, make_store: StoreFactory
) -> None:
    if backend == "memory":
        pytest.skip("compares memory against a Bolt backend")
    inter, items = random_frames(seed=3)
    mem = MemoryGraphStore.from_frames(inter, items)
    bolt = await make_store(inter, items)
    batch = [
        NewInteraction("u1", "i5", 100, 4.0),
        NewInteraction("u1", "i5", 100, 4.0),  # repeat
        NewInteraction("u1", "i7", 101),
        NewInteraction("new-user", "i5", 50),
        NewInteraction("u2", "brand-new-item", 60),
        NewInteraction("u3", "i1", 0),
    ]
    assert await mem.ingest(batch) == await bolt.ingest(batch)
    await _assert_same_rankings(mem, bolt, ["u1", "u2", "u3", "new-user", "u9"])


async def test_connect_rebuilds_adjacency_lists_missing_from_an_older_graph(
    make_store: StoreFactory, bolt_only: Neo4jConfig
) -> None:
    inter, items = random_frames(seed=5)
    mem = MemoryGraphStore.from_frames(inter, items)
    bolt = await make_store(inter, items)
    assert isinstance(bolt, Neo4jGraphStore)
    await bolt._write_once(
        "MATCH (n) REMOVE n.adj_items, n.adj_ts, n.raters, n.raters_ts, n.recent_items, n.recent_ts"
    )
    assert await bolt.candidates("u1", 10) != await mem.candidates("u1", 10)  # lists gone
    reopened = await Neo4jGraphStore.connect(replace(bolt_only, export_page=7))  # 6 pages
    try:
        assert not await reopened.rebuild_adjacency(only_if_missing=True)  # already rebuilt
        await _assert_same_rankings(mem, reopened, [f"u{u}" for u in range(0, 40, 4)])
    finally:
        await reopened.close()


async def test_cached_item_metadata_follows_an_outside_writer_after_its_lifetime(
    make_store: StoreFactory, bolt_only: Neo4jConfig
) -> None:
    inter, items = random_frames(seed=2)
    await make_store(inter, items)
    reader = await Neo4jGraphStore.connect(replace(bolt_only, item_cache_s=0.5))
    writer = await Neo4jGraphStore.connect(bolt_only)
    try:
        assert (await reader.items(["i1"]))["i1"].title == "Film 1"
        await writer.ingest([], [ItemRecord("i1", "Film One (restored)")])
        assert (await reader.items(["i1"]))["i1"].title == "Film 1"  # served from the cache
        await asyncio.sleep(0.6)
        assert (await reader.items(["i1"]))["i1"].title == "Film One (restored)"
        await reader.ingest([], [ItemRecord("i2", "Film Two")])  # its own write: no wait
        assert (await reader.items(["i2"]))["i2"].title == "Film Two"
    finally:
        await reader.close()
        await writer.close()


async def test_cached_lists_follow_an_outside_writer_after_their_lifetime(
    make_store: StoreFactory, bolt_only: Neo4jConfig
) -> None:
    """The rater and recent lists a reader caches (`graph_store.list_cache`): another
    writer's edges reach its rankings once they expire, its own writes at once."""
    inter, items = random_frames(seed=2)
    await make_store(inter, items)
    mem = MemoryGraphStore.from_frames(inter, items)
    reader = await Neo4jGraphStore.connect(replace(bolt_only, list_cache_s=0.5))
    writer = await Neo4jGraphStore.connect(bolt_only)
    try:
        window = [h.item.item_id for h in await mem.history("u1", 8)]
        before = await mem.candidates("u1", 40)
        assert await reader.candidates("u1", 40) == before
        twin = [NewInteraction("twin", i, 100 + k) for k, i in enumerate(window)]
        twin += [NewInteraction("twin", "i58", 200), NewInteraction("twin", "i59", 201)]
        for store in (writer, mem):
            await store.ingest(twin)
        after = await mem.candidates("u1", 40)
        assert after != before  # the twin is now u1's closest neighbour
        assert await reader.candidates("u1", 40) == before  # its lists are still cached
        await asyncio.sleep(0.6)
        assert await reader.candidates("u1", 40) == after
        more = [NewInteraction("twin2", i, 300 + k) for k, i in enumerate(window)]
        more += [NewInteraction("twin2", "i57", 400)]
        for store in (reader, mem):
            await store.ingest(more)
        assert await reader.candidates("u1", 40) == await mem.candidates("u1", 40)
    finally:
        await reader.close()
        await writer.close()


async def test_bolt_ranks_a_graph_index_of_the_same_neighbours(
    make_store: StoreFactory, bolt_only: Neo4jConfig
) -> None:
    """The index the Bolt store builds from a fetched neighbourhood picks the neighbours
    the embedded store's index picks over the whole graph."""
    inter, items = random_frames(seed=11)
    full = MemoryGraphStore.from_frames(inter, items).index
    bolt = await make_store(inter, items)
    assert isinstance(bolt, Neo4jGraphStore)
    cparams, chain_params = CandidateParams(window=8, max_neighbours=6), ChainParams(window=6)
    for user in [f"u{u}" for u in range(0, 40, 3)] + ["cold"]:
        local = await bolt._neighbourhood(user).for_candidates(cparams)
        assert (local is None) == (user == "cold")
        if local is None:
            continue
        assert list(local.chosen or ()) == full.neighbours(user, 8, 1, 6), user
        assert local.cooccurrence(user, 10, cparams, None) == [
            replace(c, item=replace(c.item, title="", attributes={}))
            for c in full.cooccurrence(user, 10, cparams, None)
        ]
        chained = await bolt._neighbourhood(user).for_chains(chain_params, None)
        assert chained is not None
        args = (user, 6, 2, chain_params.max_neighbours)
        assert list(chained.chosen or ()) == full.neighbours(*args), user
