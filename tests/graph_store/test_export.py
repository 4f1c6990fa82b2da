"""GraphStore.export: what the store holds, back in the dataset schema (memory and Bolt)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from graph_store.base import GraphStoreBase
from graph_store.memory import MemoryGraphStore
from graph_store.neo4j_store import Neo4jGraphStore
from graph_store.types import ItemRecord, NewInteraction
from recdata.schema import Dataset
from tests.graph_store.conftest import StoreFactory, toy_frames

pytestmark = pytest.mark.asyncio


def _edges(data: Dataset) -> set[tuple[str, str, int, float | None]]:
    return {
        (u, i, int(t), None if math.isnan(r) else float(r))
        for u, i, t, r in data.interactions.itertuples(index=False)
    }


async def test_export_round_trips_the_loaded_data(toy: GraphStoreBase) -> None:
    inter, items = toy_frames()
    exported = await toy.export("toy-live")
    expected = Dataset.from_frames("toy", inter, items)
    assert exported.name == "toy-live"
    assert _edges(exported) == _edges(expected)
    frame = exported.items.set_index("item_id").sort_index()
    assert list(frame["title"]) == list(items["title"])
    assert list(frame["year"]) == list(items["year"])


async def test_export_includes_ingested_rows_and_placeholders(toy: GraphStoreBase) -> None:
    await toy.ingest(
        [NewInteraction("new user", "m6", 50, 4.5), NewInteraction("a", "m9", 60, None)],
        [ItemRecord("m7", "Gattaca", {"genres": "Sci-Fi"})],
    )
    exported = await toy.export("live")
    assert {("new user", "m6", 50, 4.5), ("a", "m9", 60, None)} <= _edges(exported)
    titles = dict(zip(exported.items["item_id"], exported.items["title"], strict=True))
    assert titles["m7"] == "Gattaca" and "m9" in titles  # m9 exported with its placeholder
    genres = dict(zip(exported.items["item_id"], exported.items["genres"], strict=True))
    assert genres["m7"] == "Sci-Fi" and genres["m1"] == ""


async def test_export_since_keeps_later_interactions_and_every_item(toy: GraphStoreBase) -> None:
    exported = await toy.export("recent", since=20)
    assert {(u, i, t) for u, i, t, _ in _edges(exported)} == {
        ("a", "m2", 20),
        ("a", "m3", 30),
        ("b", "m4", 40),
    }
    assert len(exported.items) == 6


async def test_export_pages_through_more_users_than_a_page(make_store: StoreFactory) -> None:
    inter = pd.DataFrame(
        [(f"u{k:03d}", f"m{1 + k % 3}", 100 + k, 1.0 + k % 5) for k in range(25)],
        columns=["user_id", "item_id", "timestamp", "rating"],
    )
    items = pd.DataFrame({"item_id": ["m1", "m2", "m3", "m4"], "title": list("ABCD")})
    store = await make_store(inter, items)
    if isinstance(store, Neo4jGraphStore):  # pages of 4 users / items
        store._config = replace(store._config, export_page=4)
    exported = await store.export("paged")
    assert len(exported.interactions) == 25 and len(exported.items) == 4
    assert _edges(exported) == _edges(Dataset.from_frames("x", inter, items))


async def test_a_replayed_snapshot_reads_a_journal_in_use(tmp_path: Path) -> None:
    inter, items = toy_frames()
    data = Dataset.from_frames("toy", inter, items)
    journal = tmp_path / "toy.jsonl"
    serving = MemoryGraphStore.from_dataset(data, journal=journal)  # holds the lock
    try:
        await serving.ingest([NewInteraction("z", "m6", 70, 3.0)])
        snapshot = MemoryGraphStore.replayed(data, journal)
        assert ("z", "m6", 70, 3.0) in _edges(await snapshot.export("live"))
    finally:
        await serving.close()
