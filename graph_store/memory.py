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

Durability: opened with a journal (``from_dataset(ds, journal=path)``, as the service
does), every write is appended to it and fsync'd after the new index is built and before
it is swapped in, and the journal is replayed at start-up (`graph_store.journal`). A write
the journal refuses raises and changes nothing. Without a journal the store is volatile.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from graph_store.base import (
    ExportedEdges,
    GraphStoreBase,
    ProgressCallback,
    frame_interactions,
    frame_records,
    prepare_batch,
)
from graph_store.index import GraphIndex
from graph_store.journal import Batch, Journal, read_batches
from graph_store.types import (
    PLACEHOLDER_TITLE,
    Candidate,
    CandidateParams,
    Chain,
    ChainParams,
    GraphCaps,
    GraphCounts,
    HistoryEntry,
    IngestResult,
    Item,
    ItemRecord,
    NewInteraction,
    RatingEvidence,
    TasteParams,
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
    caps: GraphCaps,
) -> GraphIndex:
    """The index over these edges (a seam: tests make a write fail here)."""
    return GraphIndex.build(user_ids, items, user, item, ts, rating, caps)


def _upsert_items(
    items: list[Item],
    index: dict[str, int],
    records: Iterable[ItemRecord],
    referenced: Iterable[str],
) -> None:
    """Upsert ``records`` into ``items``/``index`` in place; placeholders for bare references."""
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


class MemoryGraphStore(GraphStoreBase):
    """In-process graph store over numpy arrays; see the module docstring."""

    def __init__(self, caps: GraphCaps | None = None) -> None:
        """``caps`` bound what one request reads (`GraphCaps`; default: its defaults)."""
        self._index = GraphIndex.empty(caps or GraphCaps())
        self._journal: Journal | None = None

    @classmethod
    def from_index(cls, index: GraphIndex) -> MemoryGraphStore:
        """A store serving this snapshot (benchmarks build big indexes from codes)."""
        store = cls(index.caps)
        store._index = index
        return store

    @classmethod
    def from_dataset(
        cls, dataset: Dataset, journal: Path | None = None, caps: GraphCaps | None = None
    ) -> MemoryGraphStore:
        """The dataset's graph; with ``journal``, plus every batch journaled there, and
        every later write journaled (the file is locked to this store until ``close``)."""
        store = cls.from_frames(dataset.interactions, dataset.items, caps)
        if journal is not None:
            store.attach_journal(journal)
        return store

    def attach_journal(self, path: Path) -> int:
        """Open (and lock) the journal at ``path``, replay it onto the graph, and journal
        every later write there. Returns the number of batches replayed."""
        if self._journal is not None:
            raise RuntimeError(f"this store already journals to {self._journal.path}")
        journal, batches = Journal.open(path)
        try:
            batches = [prepare_batch(rows, records) for rows, records in batches]
            if batches:
                self._index = self._apply(self._index, batches)
        except BaseException:
            journal.close()
            raise
        self._journal = journal
        return len(batches)

    @property
    def journal_path(self) -> Path | None:
        return None if self._journal is None else self._journal.path

    async def close(self) -> None:
        """Release the journal (reads still work; writes then fail)."""
        if self._journal is not None:
            self._journal.close()

    @classmethod
    def from_frames(
        cls, interactions: pd.DataFrame, items: pd.DataFrame, caps: GraphCaps | None = None
    ) -> MemoryGraphStore:
        store = cls(caps)
        store._load(interactions, items)
        return store

    async def load_frames(
        self,
        interactions: pd.DataFrame,
        items: pd.DataFrame,
        chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> GraphCounts:
        """Bulk-load frames in one step (``chunk_size`` only paces the progress calls).

        With a journal, the frames are journaled as one batch before they are applied.
        """
        new = self._loaded(interactions, items)
        if self._journal is not None:
            self._journal.append(
                *prepare_batch(frame_interactions(interactions), frame_records(items))
            )
        self._index = new
        if on_progress is not None:
            size = max(chunk_size or 5000, 1)
            for start in range(0, len(interactions), size):
                on_progress(min(size, len(interactions) - start))
        return await self._counts()

    def _load(self, interactions: pd.DataFrame, items: pd.DataFrame) -> None:
        self._index = self._loaded(interactions, items)

    def _loaded(self, interactions: pd.DataFrame, items: pd.DataFrame) -> GraphIndex:
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
        return _build(
            user_ids,
            item_list,
            np.concatenate((snap.edge_user, user_col.map(user_index).to_numpy(np.int64))),
            np.concatenate((snap.edge_item, item_col.map(item_index).to_numpy(np.int64))),
            np.concatenate((snap.edge_ts, interactions["timestamp"].to_numpy(np.int64))),
            np.concatenate((snap.edge_rating, rating)),
            snap.caps,
        )

    @staticmethod
    def _merged_items(
        snap: GraphIndex, records: Sequence[ItemRecord], referenced: Collection[str]
    ) -> tuple[list[Item], dict[str, int]]:
        """Items after upserting ``records`` and creating placeholders for bare references."""
        items, index = list(snap.items), dict(snap.item_index)
        _upsert_items(items, index, records, referenced)
        return items, index

    async def _ingest(self, rows: list[NewInteraction], records: list[ItemRecord]) -> IngestResult:
        snap = self._index
        new = self._apply(snap, [(rows, records)])  # a failure here writes nothing
        if self._journal is not None:
            self._journal.append(rows, records)  # durable before it is visible
        self._index = new
        return IngestResult(len(rows), len(new.edge_user) - len(snap.edge_user))

    @classmethod
    def _apply(cls, snap: GraphIndex, batches: Iterable[Batch]) -> GraphIndex:
        """``snap`` plus the batches in order, in one index build (what ingesting them one
        after the other would give)."""
        items, item_index = list(snap.items), dict(snap.item_index)
        user_ids, user_index = list(snap.user_ids), dict(snap.user_index)
        all_rows: list[NewInteraction] = []
        for rows, records in batches:
            _upsert_items(items, item_index, records, [r.item_id for r in rows])
            for row in rows:
                if row.user_id not in user_index:
                    user_index[row.user_id] = len(user_ids)
                    user_ids.append(row.user_id)
            all_rows += rows
        return cls._build_with(snap, user_ids, items, user_index, item_index, all_rows)

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
            snap.caps,
        )

    @property
    def index(self) -> GraphIndex:
        """The current snapshot (immutable: a write swaps in a new one)."""
        return self._index

    async def _counts(self) -> GraphCounts:
        return self._index.counts()

    async def _users(self, n: int) -> list[str]:
        snap = self._index
        first = np.flatnonzero(snap.user_rank < n)  # O(users): no sort of all ids
        return [snap.user_ids[u] for u in first[np.argsort(snap.user_rank[first])]]

    async def _export(self, since: int | None) -> tuple[list[Item], ExportedEdges]:
        snap = self._index  # one immutable snapshot: a concurrent write cannot tear it
        keep = np.ones(len(snap.edge_ts), dtype=bool) if since is None else snap.edge_ts >= since
        users = np.asarray(snap.user_ids, dtype=object)
        items = np.asarray([i.item_id for i in snap.items], dtype=object)
        edges = ExportedEdges(
            user_id=users[snap.edge_user[keep]].tolist() if len(users) else [],
            item_id=items[snap.edge_item[keep]].tolist() if len(items) else [],
            timestamp=snap.edge_ts[keep].tolist(),
            rating=snap.edge_rating[keep].tolist(),
        )
        return list(snap.items), edges

    @classmethod
    def replayed(cls, dataset: Dataset, journal: Path) -> MemoryGraphStore:
        """What a service journaling to ``journal`` serves now: the dataset plus every
        complete batch of the journal, read without locking it (the service may be
        running and appending) and without journaling later writes here."""
        store = cls.from_frames(dataset.interactions, dataset.items)
        batches = [prepare_batch(rows, records) for rows, records in read_batches(journal)]
        if batches:
            store._index = store._apply(store._index, batches)
        return store

    async def _history(self, user_id: str, n: int) -> list[HistoryEntry]:
        return self._index.history(user_id, n)

    async def _items(self, item_ids: Sequence[str]) -> dict[str, Item]:
        return self._index.find_items(item_ids)

    async def _seen_items(self, user_id: str) -> set[str]:
        return self._index.seen(user_id)

    async def _rating_evidence(
        self, user_id: str, item_id: str, taste: TasteParams
    ) -> RatingEvidence:
        return self._index.rating_evidence(user_id, item_id, taste)

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
