"""The embedded, in-process graph store: one `GraphIndex` over the whole graph.

The default on a single machine and in tests. Built from a ``recdata.schema.Dataset`` (or
an interactions frame + items frame) in well under a second for ML-100K:

    store = MemoryGraphStore.from_dataset(recdata.load_dataset("ml-100k"))
    await store.history("42", n=10)

Reads and rankings are the index's (`graph_store.index`: numpy arrays in CSR form, by
user and by item). This module does the writes: it merges new users, items and edges
and builds a new immutable index, then swaps it in, so a failed write leaves the old
one untouched and readers never see half a batch. Each write re-indexes everything
(O(E log E), tens of ms on ML-100K): the store is built for read-heavy use; batch writes
where possible.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import pandas as pd

from graph_store.base import GraphStoreBase, ProgressCallback, frame_records
from graph_store.index import GraphIndex
from graph_store.types import (
    PLACEHOLDER_TITLE,
    Candidate,
    CandidateParams,
    Chain,
    ChainParams,
    GraphCounts,
    HistoryEntry,
    IngestResult,
    Item,
    ItemRecord,
    NewInteraction,
    validate_id,
)
from recdata.schema import Dataset

IntArray = np.ndarray


def _build(
    user_ids: list[str],
    items: list[Item],
    user: IntArray,
    item: IntArray,
    ts: IntArray,
    rating: np.ndarray,
) -> GraphIndex:
    """The index over these edges (a seam: tests make a write fail here)."""
    return GraphIndex.build(user_ids, items, user, item, ts, rating)


class MemoryGraphStore(GraphStoreBase):
    """In-process graph store over numpy arrays; see the module docstring."""

    def __init__(self) -> None:
        self._index = GraphIndex.empty()

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> MemoryGraphStore:
        return cls.from_frames(dataset.interactions, dataset.items)

    @classmethod
    def from_frames(cls, interactions: pd.DataFrame, items: pd.DataFrame) -> MemoryGraphStore:
        store = cls()
        store._load(interactions, items)
        return store

    async def load_frames(
        self,
        interactions: pd.DataFrame,
        items: pd.DataFrame,
        chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> GraphCounts:
        """Bulk-load frames in one step (``chunk_size`` only paces the progress calls)."""
        self._load(interactions, items)
        if on_progress is not None:
            size = max(chunk_size or 5000, 1)
            for start in range(0, len(interactions), size):
                on_progress(min(size, len(interactions) - start))
        return await self._counts()

    def _load(self, interactions: pd.DataFrame, items: pd.DataFrame) -> None:
        records = [r.validated() for r in frame_records(items)]
        snap = self._index
        user_col = interactions["user_id"].astype(str)
        item_col = interactions["item_id"].astype(str)
        for uid in pd.unique(user_col):
            validate_id(uid, "user")
        for iid in pd.unique(item_col):
            validate_id(iid, "item")
        referenced = [str(i) for i in pd.unique(item_col)]
        item_list, item_index = self._merged_items(snap, records, referenced)
        user_ids = list(snap.user_ids)
        user_index = dict(snap.user_index)
        for uid in pd.unique(user_col):
            if uid not in user_index:
                user_index[uid] = len(user_ids)
                user_ids.append(uid)
        rating = (
            interactions["rating"].astype("float64").to_numpy()
            if "rating" in interactions
            else np.full(len(interactions), np.nan)
        )
        self._index = _build(
            user_ids,
            item_list,
            np.concatenate((snap.edge_user, user_col.map(user_index).to_numpy(np.int64))),
            np.concatenate((snap.edge_item, item_col.map(item_index).to_numpy(np.int64))),
            np.concatenate((snap.edge_ts, interactions["timestamp"].to_numpy(np.int64))),
            np.concatenate((snap.edge_rating, rating)),
        )

    @staticmethod
    def _merged_items(
        snap: GraphIndex, records: Sequence[ItemRecord], referenced: Collection[str]
    ) -> tuple[list[Item], dict[str, int]]:
        """Items after upserting ``records`` and creating placeholders for bare references."""
        items = list(snap.items)
        index = dict(snap.item_index)
        for rec in records:
            item = Item(rec.item_id, rec.title, dict(rec.attributes), placeholder=False)
            if rec.item_id in index:
                old = items[index[rec.item_id]]
                item = Item(rec.item_id, rec.title, {**old.attributes, **rec.attributes})
                items[index[rec.item_id]] = item
            else:
                index[rec.item_id] = len(items)
                items.append(item)
        for iid in referenced:
            if iid not in index:
                index[iid] = len(items)
                items.append(Item(iid, PLACEHOLDER_TITLE.format(item_id=iid), {}, True))
        return items, index

    async def _ingest(self, rows: list[NewInteraction], records: list[ItemRecord]) -> IngestResult:
        snap = self._index
        items, item_index = self._merged_items(snap, records, [r.item_id for r in rows])
        user_ids, user_index = list(snap.user_ids), dict(snap.user_index)
        for row in rows:
            if row.user_id not in user_index:
                user_index[row.user_id] = len(user_ids)
                user_ids.append(row.user_id)
        new = self._build_with(snap, user_ids, items, user_index, item_index, rows)
        self._index = new
        return IngestResult(len(rows), len(new.edge_user) - len(snap.edge_user))

    @staticmethod
    def _build_with(
        snap: GraphIndex,
        user_ids: list[str],
        items: list[Item],
        user_index: dict[str, int],
        item_index: dict[str, int],
        rows: Sequence[NewInteraction],
    ) -> GraphIndex:
        def column(values: list[int]) -> IntArray:
            return np.asarray(values, dtype=np.int64)

        ratings = np.asarray([np.nan if r.rating is None else r.rating for r in rows], float)
        return _build(
            user_ids,
            items,
            np.concatenate((snap.edge_user, column([user_index[r.user_id] for r in rows]))),
            np.concatenate((snap.edge_item, column([item_index[r.item_id] for r in rows]))),
            np.concatenate((snap.edge_ts, column([r.ts for r in rows]))),
            np.concatenate((snap.edge_rating, ratings)),
        )

    @property
    def index(self) -> GraphIndex:
        """The current snapshot (immutable: a write swaps in a new one)."""
        return self._index

    async def _counts(self) -> GraphCounts:
        return self._index.counts()

    async def _history(self, user_id: str, n: int) -> list[HistoryEntry]:
        return self._index.history(user_id, n)

    async def _items(self, item_ids: Sequence[str]) -> dict[str, Item]:
        return self._index.find_items(item_ids)

    async def _seen_items(self, user_id: str) -> set[str]:
        return self._index.seen(user_id)

    async def _cooccurrence(
        self, user_id: str, n: int, params: CandidateParams, among: frozenset[str] | None
    ) -> list[Candidate]:
        return self._index.cooccurrence(user_id, n, params, among)

    async def _popular(
        self, n: int, exclude: Collection[str], among: frozenset[str] | None
    ) -> list[Candidate]:
        return self._index.popular(n, exclude, among)

    async def _chains(
        self, user_id: str, params: ChainParams, seed: int, candidates: frozenset[str] | None
    ) -> list[Chain]:
        return self._index.chains(user_id, params, seed, candidates)
