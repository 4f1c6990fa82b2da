"""What a graph store serves now, as a dataset: the export side of the retraining loop.

Interactions posted to ``POST /interactions`` live in the store that serves them: the
embedded store (the dataset it was started on, plus its journal of writes) or a Bolt
server (Neo4j). A retrain job or ``r2rec graph export`` snapshots that store here, in the
canonical dataset schema (`recdata.schema`), so training sees what the service ingested.

    source = StoreSource(dataset="ml-100k")                     # embedded: dataset + journal
    source = StoreSource(dataset="shop", kind="neo4j", neo4j=Neo4jConfig(uri="bolt://..."))
    data = asyncio.run(export_source(source, name="shop-live"))

The embedded snapshot reads the journal without taking its lock, so it works while the
service runs (`MemoryGraphStore.replayed`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import UserInputError
from common.paths import journal_file
from recdata.schema import Dataset

if TYPE_CHECKING:
    from graph_store.neo4j_store import Neo4jConfig

STORE_KINDS = ("memory", "neo4j")


@dataclass(frozen=True)
class StoreSource:
    """Where the served interactions are: which store, on top of which dataset."""

    dataset: str = field(metadata={"help": "Dataset the embedded store serves / export label."})
    kind: str = field(default="memory", metadata={"help": "memory (embedded) or neo4j (Bolt)."})
    journal: Path | None = field(
        default=None, metadata={"help": "memory: journal (default $R2REC_HOME/journal/D.jsonl)."}
    )
    neo4j: Neo4jConfig | None = field(default=None, metadata={"help": "neo4j: connection."})

    def __post_init__(self) -> None:
        if self.kind not in STORE_KINDS:
            raise UserInputError(
                f"store must be one of {', '.join(STORE_KINDS)}, got {self.kind!r}"
            )
        if self.kind == "neo4j" and self.neo4j is None:
            raise UserInputError("store neo4j needs a Bolt connection (uri, user, password)")

    def describe(self) -> str:
        if self.kind == "neo4j":
            assert self.neo4j is not None
            return f"neo4j {self.neo4j.uri} (database {self.neo4j.database})"
        return f"embedded {self.dataset} + journal {self.journal or journal_file(self.dataset)}"


async def export_source(
    source: StoreSource, name: str | None = None, since: int | None = None
) -> Dataset:
    """Everything ``source`` serves (interactions at or after ``since`` only, when given)
    as dataset ``name`` (default: the source's dataset name)."""
    name = name or source.dataset
    if source.kind == "neo4j":
        from graph_store.neo4j_store import Neo4jGraphStore

        assert source.neo4j is not None
        bolt = await Neo4jGraphStore.connect(source.neo4j, create_schema=False)
        try:
            return await bolt.export(name, since)
        finally:
            await bolt.close()
    from graph_store.memory import MemoryGraphStore
    from recdata import load_dataset

    journal = source.journal or journal_file(source.dataset)
    store = MemoryGraphStore.replayed(load_dataset(source.dataset), journal)
    return await store.export(name, since)
