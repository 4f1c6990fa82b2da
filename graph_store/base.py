"""The one ``GraphStore`` interface, and the logic every implementation shares.

``GraphStore`` (a ``typing.Protocol``) is what callers type against. ``GraphStoreBase``
implements the public methods once -- input validation and the popular-items fill of
candidates -- on top of a few primitives each store answers from its own data (numpy
arrays, or Cypher and the fetched neighbourhood):

- ``_history`` / ``_items`` / ``_counts`` / ``_ingest`` / ``_export``: direct answers;
- ``_cooccurrence``: top-n unseen items by co-interaction with the user's recent window,
  voted by the top neighbours (score desc, item id asc);
- ``_popular``: items by distinct users desc, item id asc, minus an exclusion set;
- ``_chains``: chains enumerated from bounded raw rows (``graph_store.chains``).

Candidates and chains are ranked by one `graph_store.index.GraphIndex`: the embedded
store's over the whole graph, the Bolt store's over the user's fetched neighbourhood.

Ordering everywhere: "most recent" = ts desc then item id desc (the reverse of the
evaluation protocol's (ts, item id) order); ranks break ties by ascending id.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pandas as pd

from graph_store.types import (
    Candidate,
    CandidateParams,
    Chain,
    ChainParams,
    GraphCounts,
    HistoryEntry,
    IngestResult,
    InvalidRecordError,
    Item,
    ItemRecord,
    NewInteraction,
    RatingEvidence,
    TasteParams,
    validate_id,
)
from recdata.schema import Dataset

ProgressCallback = Callable[[int], None]  # called with the number of rows just written


@runtime_checkable
class GraphStore(Protocol):
    """Users, items and timestamped interactions; what the service and training ask of it."""

    async def history(self, user_id: str, n: int = 10) -> list[HistoryEntry]: ...
    async def item(self, item_id: str) -> Item | None: ...
    async def items(self, item_ids: Sequence[str]) -> dict[str, Item]: ...
    async def rating_evidence(
        self,
        user_id: str,
        item_id: str,
        taste: TasteParams = TasteParams(),  # noqa: B008 (frozen, immutable)
    ) -> RatingEvidence: ...
    async def candidates(
        self,
        user_id: str,
        n: int = 20,
        params: CandidateParams = ...,
        among: Collection[str] | None = None,
    ) -> list[Candidate]: ...
    async def chains(
        self,
        user_id: str,
        params: ChainParams = ...,
        seed: int = 0,
        candidates: Collection[str] | None = None,
    ) -> list[Chain]: ...
    async def ingest(
        self, interactions: Iterable[NewInteraction], items: Iterable[ItemRecord] = ()
    ) -> IngestResult: ...
    async def load_frames(
        self,
        interactions: pd.DataFrame,
        items: pd.DataFrame,
        chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> GraphCounts: ...
    async def counts(self) -> GraphCounts: ...
    async def users(self, n: int = 50) -> list[str]: ...
    async def export(self, name: str, since: int | None = None) -> Dataset: ...
    async def close(self) -> None: ...


def _validate_n(n: int, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InvalidRecordError(f"{name} must be a non-negative integer, got {n!r}")
    return n


def _validate_ids(ids: Collection[str] | None, kind: str) -> frozenset[str] | None:
    if ids is None:
        return None
    if isinstance(ids, str):
        raise InvalidRecordError(f"{kind} ids must be a collection of ids, not one string")
    return frozenset(validate_id(i, kind) for i in ids)


def prepare_batch(
    interactions: Iterable[NewInteraction], items: Iterable[ItemRecord]
) -> tuple[list[NewInteraction], list[ItemRecord]]:
    """Validate everything first (nothing is written on bad input); drop repeated edges."""
    rows: dict[tuple[str, str, int], NewInteraction] = {}
    for row in interactions:
        if not isinstance(row, NewInteraction):
            raise InvalidRecordError(f"expected NewInteraction, got {type(row).__name__}")
        valid = row.validated()
        rows.setdefault((valid.user_id, valid.item_id, valid.ts), valid)
    records: dict[str, ItemRecord] = {}
    for record in items:
        if not isinstance(record, ItemRecord):
            raise InvalidRecordError(f"expected ItemRecord, got {type(record).__name__}")
        valid_item = record.validated()
        records[valid_item.item_id] = valid_item
    return list(rows.values()), list(records.values())


class GraphStoreBase(ABC):
    """Public methods over per-store primitives; subclass and implement the ``_`` methods."""

    async def history(self, user_id: str, n: int = 10) -> list[HistoryEntry]:
        """The user's ``n`` most recent interactions (unknown user: empty list)."""
        return await self._history(validate_id(user_id, "user"), _validate_n(n))

    async def item(self, item_id: str) -> Item | None:
        found = await self._items([validate_id(item_id, "item")])
        return found.get(item_id)

    async def items(self, item_ids: Sequence[str]) -> dict[str, Item]:
        """Known items among ``item_ids`` (unknown ids are simply absent)."""
        ids = _validate_ids(item_ids, "item") or frozenset()
        return await self._items(sorted(ids)) if ids else {}

    async def rating_evidence(
        self,
        user_id: str,
        item_id: str,
        taste: TasteParams = TasteParams(),  # noqa: B008 (frozen, immutable)
    ) -> RatingEvidence:
        """What the graph says about the user rating the item (`RatingEvidence`); an
        unknown user has no ratings and no neighbours, an unknown item no raters."""
        user_id, item_id = validate_id(user_id, "user"), validate_id(item_id, "item")
        return await self._rating_evidence(user_id, item_id, taste)

    async def candidates(
        self,
        user_id: str,
        n: int = 20,
        params: CandidateParams = CandidateParams(),  # noqa: B008 (frozen, immutable)
        among: Collection[str] | None = None,
    ) -> list[Candidate]:
        """Top-n unseen items by co-interaction, filled up with popular items.

        ``among`` restricts the answer to those items (e.g. to rank a fixed candidate list).
        """
        user_id = validate_id(user_id, "user")
        _validate_n(n)
        among_set = _validate_ids(among, "item")
        if n == 0:
            return []
        found = await self._cooccurrence(user_id, n, params, among_set)
        if len(found) < n:
            exclude = await self._seen_items(user_id) | {c.item.item_id for c in found}
            found += await self._popular(n - len(found), exclude, among_set)
        return found

    async def chains(
        self,
        user_id: str,
        params: ChainParams = ChainParams(),  # noqa: B008 (frozen, immutable)
        seed: int = 0,
        candidates: Collection[str] | None = None,
    ) -> list[Chain]:
        """Seeded closed chains u0 -> i0 -> u1 -> i1 (see ``graph_store.chains``).

        With ``candidates``, every chain's next item is one of them.
        """
        user_id = validate_id(user_id, "user")
        allowed = _validate_ids(candidates, "item")
        if allowed is not None and not allowed:
            return []
        return await self._chains(user_id, params, seed, allowed)

    async def ingest(
        self, interactions: Iterable[NewInteraction], items: Iterable[ItemRecord] = ()
    ) -> IngestResult:
        """Add interactions (and item metadata) atomically; repeats are no-ops.

        Unknown users and items are created; an item without metadata gets a placeholder
        title and ``placeholder=True`` until its metadata arrives.
        """
        rows, records = prepare_batch(interactions, items)
        if not rows and not records:
            return IngestResult(0, 0)
        return await self._ingest(rows, records)

    async def counts(self) -> GraphCounts:
        return await self._counts()

    async def users(self, n: int = 50) -> list[str]:
        """The first ``n`` user ids in ascending id order (a listing to pick from)."""
        n = _validate_n(n)
        return await self._users(n) if n else []

    async def export(self, name: str, since: int | None = None) -> Dataset:
        """Everything the store holds as dataset ``name`` in the canonical schema
        (``recdata.schema``): every item (placeholders too, with their placeholder title;
        attributes become columns, "" where an item lacks one) and every interaction,
        or only those with ``ts >= since``. What a retrain job trains on.
        """
        if since is not None and not isinstance(since, int):
            raise TypeError(f"since must be an int (Unix seconds) or None, got {since!r}")
        items, edges = await self._export(since)
        return export_dataset(name, items, edges)

    @abstractmethod
    async def load_frames(
        self,
        interactions: pd.DataFrame,
        items: pd.DataFrame,
        chunk_size: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> GraphCounts:
        """Bulk-load canonical frames (see ``recdata.schema``); ``on_progress(rows)``."""

    async def close(self) -> None:
        return None

    @abstractmethod
    async def _history(self, user_id: str, n: int) -> list[HistoryEntry]: ...

    @abstractmethod
    async def _items(self, item_ids: Sequence[str]) -> dict[str, Item]: ...

    @abstractmethod
    async def _rating_evidence(
        self, user_id: str, item_id: str, taste: TasteParams
    ) -> RatingEvidence: ...

    @abstractmethod
    async def _seen_items(self, user_id: str) -> set[str]: ...

    @abstractmethod
    async def _cooccurrence(
        self, user_id: str, n: int, params: CandidateParams, among: frozenset[str] | None
    ) -> list[Candidate]: ...

    @abstractmethod
    async def _popular(
        self, n: int, exclude: Collection[str], among: frozenset[str] | None
    ) -> list[Candidate]: ...

    @abstractmethod
    async def _chains(
        self, user_id: str, params: ChainParams, seed: int, candidates: frozenset[str] | None
    ) -> list[Chain]:
        """`chains` after validation (``candidates`` is None or non-empty)."""

    @abstractmethod
    async def _ingest(
        self, rows: list[NewInteraction], records: list[ItemRecord]
    ) -> IngestResult: ...

    @abstractmethod
    async def _counts(self) -> GraphCounts: ...

    @abstractmethod
    async def _users(self, n: int) -> list[str]: ...

    @abstractmethod
    async def _export(self, since: int | None) -> tuple[list[Item], ExportedEdges]:
        """Every item, and the interactions with ``ts >= since`` (all when None)."""


@dataclass(frozen=True)
class ExportedEdges:
    """Interaction columns of an export (rating NaN where there is none)."""

    user_id: Sequence[str]
    item_id: Sequence[str]
    timestamp: Sequence[int]
    rating: Sequence[float]


def export_dataset(name: str, items: Sequence[Item], edges: ExportedEdges) -> Dataset:
    """A canonical `Dataset` from exported items and edges (see `GraphStoreBase.export`)."""
    keys = sorted({k for item in items for k in item.attributes if k not in ("item_id", "title")})
    item_frame = pd.DataFrame(
        {
            "item_id": [i.item_id for i in items],
            "title": [i.title for i in items],
            **{k: [str(i.attributes.get(k, "")) for i in items] for k in keys},
        }
    )
    inter = pd.DataFrame(
        {
            "user_id": pd.Series(edges.user_id, dtype=object).astype(str),
            "item_id": pd.Series(edges.item_id, dtype=object).astype(str),
            "timestamp": pd.Series(edges.timestamp, dtype="int64"),
            "rating": pd.Series(edges.rating, dtype="float64"),
        }
    )
    return Dataset.from_frames(name, inter, item_frame, meta={"source": "graph export"})


def frame_records(items: pd.DataFrame) -> list[ItemRecord]:
    """Item metadata rows of a canonical items frame (extra columns become attributes)."""
    extra = [c for c in items.columns if c not in ("item_id", "title")]
    columns = [items["item_id"].astype(str), items["title"].fillna("").astype(str)]
    columns += [items[c].fillna("").astype(str) for c in extra]
    return [
        ItemRecord(row[0], row[1], dict(zip(extra, row[2:], strict=True)))
        for row in zip(*columns, strict=True)
    ]


def frame_interactions(interactions: pd.DataFrame) -> list[NewInteraction]:
    """Rows of a canonical interactions frame as ``NewInteraction`` (NaN rating -> None)."""
    ratings = (
        interactions["rating"].astype("float64")
        if "rating" in interactions
        else pd.Series(float("nan"), index=interactions.index)
    )
    return [
        NewInteraction(u, i, int(t), None if r != r else float(r))
        for u, i, t, r in zip(
            interactions["user_id"].astype(str),
            interactions["item_id"].astype(str),
            interactions["timestamp"].astype("int64"),
            ratings,
            strict=True,
        )
    ]
