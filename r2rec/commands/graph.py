"""`r2rec graph load | export`: load a dataset into a graph store (with a progress bar),
or export what a store serves.

    r2rec graph load --dataset ml-100k --store neo4j --uri bolt://localhost:7687 \\
        --user neo4j --password secret --database neo4j [--split train]
    r2rec graph load --dataset ml-100k --store memory     # builds the embedded store, reports

``--split train`` loads only the training interactions of the evaluation protocol
(``evaluation.protocol.training_log(ds, "test")``), so evaluated targets stay unseen.
Bolt options also read ``NEO4J_URI`` / ``NEO4J_USER`` / ``NEO4J_PASSWORD`` /
``NEO4J_DATABASE``. The embedded store lives in the process that builds it (the
service builds its own at start-up); ``--store memory`` checks the data and timing.
Loading into Bolt is idempotent: re-running adds nothing twice.

    r2rec graph rebuild-adjacency --uri bolt://localhost:7687 ...

rebuilds the nodes' adjacency lists (`graph_store.cypher`) from the edges, for a graph
whose INTERACTED edges were written by another tool.

    r2rec graph export --store neo4j --uri bolt://localhost:7687 --out DIR [--since TS]
    r2rec graph export --store memory --dataset ml-100k --out DIR

writes ``DIR/interactions.csv`` and ``DIR/items.csv`` (dataset schema; `r2rec data import`
reads them back): the embedded store as the service serves it (the dataset plus the
service's journal, read while the service runs), or everything on the Bolt server.
"""

from __future__ import annotations

import asyncio
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from common.files import replace_dir, staging_dir
from graph_store.base import GraphStoreBase
from graph_store.memory import MemoryGraphStore
from graph_store.neo4j_store import Neo4jConfig, Neo4jGraphStore
from graph_store.types import GraphCounts, GraphStoreError
from recdata.store import load_dataset

app = typer.Typer(
    help="The interaction graph: load datasets into a graph store.", no_args_is_help=True
)
console = Console(stderr=True)


UriOpt = Annotated[str, typer.Option(envvar="NEO4J_URI", help="Bolt URI")]
UserOpt = Annotated[str, typer.Option(envvar="NEO4J_USER", help="Bolt user")]
PasswordOpt = Annotated[str, typer.Option(envvar="NEO4J_PASSWORD", help="Bolt password")]
DatabaseOpt = Annotated[str, typer.Option(envvar="NEO4J_DATABASE", help="database")]


class StoreKind(StrEnum):
    neo4j = "neo4j"
    memory = "memory"


class Split(StrEnum):
    train = "train"
    all = "all"


def interactions_for(dataset_name: str, split: Split) -> tuple[pd.DataFrame, pd.DataFrame]:
    dataset = load_dataset(dataset_name)
    if split is Split.all:
        return dataset.interactions, dataset.items
    from evaluation.protocol import training_log

    return training_log(dataset, "test"), dataset.items


async def _load(
    store: GraphStoreBase, inter: pd.DataFrame, items: pd.DataFrame, chunk_size: int
) -> GraphCounts:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("interactions", total=len(inter))
        return await store.load_frames(
            inter,
            items,
            chunk_size=chunk_size,
            on_progress=lambda n: progress.advance(task, n),
        )


async def _load_bolt(config: Neo4jConfig, inter: pd.DataFrame, items: pd.DataFrame) -> GraphCounts:
    store = await Neo4jGraphStore.connect(config)
    try:
        return await _load(store, inter, items, config.chunk_size)
    finally:
        await store.close()


@app.command("load")
def load_command(
    dataset: Annotated[str, typer.Option(help="dataset name (r2rec data list)")],
    store: Annotated[StoreKind, typer.Option(help="neo4j (any Bolt server) or memory")],
    split: Annotated[Split, typer.Option(help="train: protocol training log only")] = Split.all,
    uri: UriOpt = "bolt://127.0.0.1:7687",
    user: UserOpt = "neo4j",
    password: PasswordOpt = "",
    database: DatabaseOpt = "neo4j",
    chunk_size: Annotated[int, typer.Option(min=1, help="rows per transaction")] = 5000,
) -> None:
    """Load a dataset's users, items and interactions into a graph store."""
    inter, items = interactions_for(dataset, split)
    started = time.perf_counter()
    try:
        if store is StoreKind.memory:
            counts = asyncio.run(_load(MemoryGraphStore(), inter, items, chunk_size))
        else:
            config = Neo4jConfig(
                uri=uri, user=user, password=password, database=database, chunk_size=chunk_size
            )
            counts = asyncio.run(_load_bolt(config, inter, items))
    except GraphStoreError as err:
        console.print(f"[red]graph store error:[/red] {err}")
        raise typer.Exit(1) from err
    seconds = time.perf_counter() - started
    typer.echo(
        f"{store.value}: {counts.users:,} users, {counts.items:,} items, "
        f"{counts.interactions:,} interactions ({len(inter):,} rows from {dataset}/{split.value}) "
        f"in {seconds:.1f} s"
    )


async def _rebuild(config: Neo4jConfig) -> None:
    store = await Neo4jGraphStore.connect(config, create_schema=False)
    try:
        await store.rebuild_adjacency()
    finally:
        await store.close()


@app.command("rebuild-adjacency")
def rebuild_adjacency_command(
    uri: UriOpt = "bolt://127.0.0.1:7687",
    user: UserOpt = "neo4j",
    password: PasswordOpt = "",
    database: DatabaseOpt = "neo4j",
) -> None:
    """Rebuild the nodes' adjacency lists from the INTERACTED edges (after edges were
    written by anything other than r2rec)."""
    started = time.perf_counter()
    try:
        asyncio.run(_rebuild(Neo4jConfig(uri=uri, user=user, password=password, database=database)))
    except GraphStoreError as err:
        console.print(f"[red]graph store error:[/red] {err}")
        raise typer.Exit(1) from err
    typer.echo(f"adjacency lists rebuilt in {time.perf_counter() - started:.1f} s")


@app.command("export")
def export_command(
    out: Annotated[Path, typer.Option(help="folder for interactions.csv and items.csv")],
    store: Annotated[StoreKind, typer.Option(help="memory (embedded + journal) or neo4j")],
    dataset: Annotated[
        str, typer.Option(help="memory: the dataset the service serves; neo4j: a label")
    ] = "ml-100k",
    journal: Annotated[
        Path | None, typer.Option(help="memory: journal file (default: the service's)")
    ] = None,
    since: Annotated[
        int | None, typer.Option(help="only interactions at or after this Unix time")
    ] = None,
    uri: UriOpt = "bolt://127.0.0.1:7687",
    user: UserOpt = "neo4j",
    password: PasswordOpt = "",
    database: DatabaseOpt = "neo4j",
) -> None:
    """Export what a graph store serves (every item, every interaction) as two CSV files
    that `r2rec data import` reads back."""
    from graph_store.snapshot import StoreSource, export_source

    bolt = Neo4jConfig(uri=uri, user=user, password=password, database=database)
    source = StoreSource(
        dataset=dataset,
        kind=store.value,
        journal=journal,
        neo4j=bolt if store is StoreKind.neo4j else None,
    )
    started = time.perf_counter()
    try:
        data = asyncio.run(export_source(source, since=since))
    except GraphStoreError as err:
        console.print(f"[red]graph store error:[/red] {err}")
        raise typer.Exit(1) from err
    with staging_dir(out) as staging:
        data.interactions.to_csv(staging / "interactions.csv", index=False)
        data.items.to_csv(staging / "items.csv", index=False)
        replace_dir(staging, out)
    typer.echo(
        f"{source.describe()}: {len(data.interactions):,} interactions, "
        f"{len(data.items):,} items -> {out} in {time.perf_counter() - started:.1f} s"
    )
