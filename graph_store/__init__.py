"""The interaction graph: users, items, timestamped interactions, and R2Rec chains.

One interface (``GraphStore``), two implementations that pass one contract suite:

- ``MemoryGraphStore``: embedded numpy/CSR store, the single-machine default
  (``MemoryGraphStore.from_dataset(recdata.load_dataset("ml-100k"))``);
- ``Neo4jGraphStore``: Neo4j 5 (or ArcadeDB) over Bolt with the async ``neo4j`` driver
  (``await Neo4jGraphStore.connect(Neo4jConfig(uri=..., password=...))``).

Both answer ``history``, ``item``/``items``, ``candidates``, ``chains``, ``ingest``,
``load_frames`` and ``counts`` identically for the same data and seed: both rank with one
``GraphIndex`` (`graph_store.index`). CLI: ``r2rec graph load``; benchmark:
``r2rec bench graph``.

The Bolt store (and with it the ``neo4j`` driver) is imported only when first named:
``import graph_store`` and the embedded store do not load the driver.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from graph_store.base import GraphStore, GraphStoreBase
from graph_store.index import GraphIndex
from graph_store.memory import MemoryGraphStore
from graph_store.types import (
    Candidate,
    CandidateParams,
    Chain,
    ChainParams,
    GraphCounts,
    GraphStoreError,
    GraphStoreUnavailable,
    HistoryEntry,
    IngestResult,
    InvalidIdError,
    InvalidInputError,
    InvalidRecordError,
    Item,
    ItemRecord,
    NewInteraction,
    RatingEvidence,
    SharedItem,
    TasteParams,
)

if TYPE_CHECKING:
    from graph_store.bolt import Neo4jConfig
    from graph_store.neo4j_store import Neo4jGraphStore

_LAZY = {"Neo4jConfig": "graph_store.bolt", "Neo4jGraphStore": "graph_store.neo4j_store"}


def __getattr__(name: str) -> Any:
    """Import the Bolt store's names on first use (keeps ``neo4j`` out of plain imports)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Candidate",
    "CandidateParams",
    "Chain",
    "ChainParams",
    "GraphCounts",
    "GraphIndex",
    "GraphStore",
    "GraphStoreBase",
    "GraphStoreError",
    "GraphStoreUnavailable",
    "HistoryEntry",
    "IngestResult",
    "InvalidIdError",
    "InvalidInputError",
    "InvalidRecordError",
    "Item",
    "ItemRecord",
    "MemoryGraphStore",
    "Neo4jConfig",
    "Neo4jGraphStore",
    "NewInteraction",
    "RatingEvidence",
    "SharedItem",
    "TasteParams",
]
