"""The interaction graph: users, items, timestamped interactions, and R2Rec chains.

One interface (``GraphStore``), two implementations that pass one contract suite:

- ``MemoryGraphStore``: embedded numpy/CSR store, the single-machine default
  (``MemoryGraphStore.from_dataset(recdata.load_dataset("ml-100k"))``);
- ``Neo4jGraphStore``: Neo4j 5 (or ArcadeDB) over Bolt with the async ``neo4j`` driver
  (``await Neo4jGraphStore.connect(Neo4jConfig(uri=..., password=...))``).

Both answer ``history``, ``item``/``items``, ``candidates``, ``chains``, ``ingest``,
``load_frames`` and ``counts`` identically for the same data and seed. CLI:
``r2rec graph load``; benchmark: ``r2rec bench graph``.
"""

from graph_store.base import GraphStore, GraphStoreBase
from graph_store.memory import MemoryGraphStore
from graph_store.neo4j_store import Neo4jConfig, Neo4jGraphStore
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
    SharedItem,
)

__all__ = [
    "Candidate",
    "CandidateParams",
    "Chain",
    "ChainParams",
    "GraphCounts",
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
    "SharedItem",
]
