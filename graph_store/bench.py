"""`r2rec bench graph`: latency of the graph store's per-request calls, and ingestion rate.

    r2rec bench graph                         # embedded store + a local ArcadeDB if installed
    r2rec bench graph --uri bolt://host:7687 --user neo4j --password ... [--load]
    r2rec bench graph --synthetic 100000,1000000 [--bolt-max 100000]   # power-law graphs

For ``--users`` random ML-100K users (drawn with replacement, seeded; the first
``--bolt-users`` of them on Bolt) it times, one call at a time, ``history(n=10)``,
``candidates(n=20)``, ``chains()`` (default parameters) and ``chains()`` restricted to
the user's 20 candidates (what ``/recommend`` asks) and prints p50/p99 in milliseconds
per store, then ingestion throughput (batches of ``--batch`` new
interactions; for Bolt also the bulk load). Before timing an operation it makes
``WARM_UP_CALLS`` untimed calls (the first users of the sample): connection pool, caches
and, on a JVM server, its JIT compiler. Targets from the issue:
embedded p99 < 2 ms per call; Bolt p99 < 30 ms for chains and candidates.

``--synthetic`` times both stores on seeded power-law graphs instead
(`graph_store.bench_synthetic`: build/load time, memory, p50/p99 per size).

Bolt: with ``--uri`` the database is used as it is (``--load`` first loads ML-100K into
it, idempotently); without, a throw-away ArcadeDB is started through
``tests/harness/arcadedb.py`` when ``scripts/setup_arcadedb.sh`` has installed it.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from common.errors import UserInputError
from common.harness import load_harness
from graph_store.base import GraphStoreBase
from graph_store.bench_synthetic import synthetic_rows
from graph_store.memory import MemoryGraphStore
from graph_store.neo4j_store import Neo4jConfig, Neo4jGraphStore
from graph_store.types import NewInteraction
from recdata.schema import Dataset
from recdata.store import load_dataset

console = Console()
Row = tuple[str, str, str, str]
WARM_UP_CALLS = 100  # untimed calls per operation before the timed ones


async def _latencies(
    call: Callable[[str], Awaitable[object]], users: list[str]
) -> tuple[float, float]:
    times = []
    for user in users:
        started = time.perf_counter()
        await call(user)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


async def _ingest_rate(store: GraphStoreBase, ds: Dataset, batch: int, batches: int) -> float:
    rng = random.Random(1)
    users, items = sorted(ds.interactions["user_id"].unique()), list(ds.items["item_id"])
    base = int(ds.interactions["timestamp"].max()) + 1
    started = time.perf_counter()
    for b in range(batches):
        rows = [
            NewInteraction(rng.choice(users), rng.choice(items), base + b * batch + k, 4.0)
            for k in range(batch)
        ]
        await store.ingest(rows)
    return batch * batches / (time.perf_counter() - started)


async def _measure(
    name: str, store: GraphStoreBase, ds: Dataset, users: list[str], batch: int
) -> list[Row]:
    rows: list[Row] = []
    shown = {u: [c.item.item_id for c in await store.candidates(u, 20)] for u in set(users)}
    for label, call in (
        ("history(n=10)", lambda u: store.history(u, 10)),
        ("candidates(n=20)", lambda u: store.candidates(u, 20)),
        ("chains()", lambda u: store.chains(u)),
        ("chains(candidates=those 20)", lambda u: store.chains(u, candidates=shown[u])),
    ):
        for user in users[:WARM_UP_CALLS]:  # pool, caches, and a JVM server's JIT
            await call(user)
        p50, p99 = await _latencies(call, users)
        rows.append((name, label, f"{p50:.2f}", f"{p99:.2f}"))
    rate = await _ingest_rate(store, ds, batch, batches=5)
    rows.append((name, f"ingest (batches of {batch})", f"{rate:,.0f} rows/s", ""))
    return rows


@asynccontextmanager
async def _local_arcadedb() -> AsyncIterator[Neo4jConfig | None]:
    harness = load_harness("arcadedb")
    if harness is None:
        console.print("[yellow]no local Bolt server: tests/harness/arcadedb.py not found[/yellow]")
        yield None
        return
    try:
        server_context = harness.arcadedb_server()
        server = server_context.__enter__()
    except harness.ArcadeDBUnavailable as err:
        console.print(f"[yellow]no local Bolt server: {err}[/yellow]")
        yield None
        return
    try:
        yield Neo4jConfig(
            uri=server.uri, user=server.user, password=server.password, database=server.database
        )
    finally:
        server_context.__exit__(None, None, None)


async def _bolt_rows(
    config: Neo4jConfig, ds: Dataset, users: list[str], load: bool, batch: int
) -> list[Row]:
    store = await Neo4jGraphStore.connect(config)
    try:
        rows: list[Row] = []
        if load:
            started = time.perf_counter()
            await store.load_frames(ds.interactions, ds.items)
            rate = len(ds.interactions) / (time.perf_counter() - started)
            rows.append(("bolt", "bulk load (5,000/tx)", f"{rate:,.0f} rows/s", ""))
        return await _measure(f"bolt {config.uri}", store, ds, users, batch) + rows
    finally:
        await store.close()


async def _run(
    n_users: int,
    n_bolt_users: int,
    uri: str | None,
    config: Neo4jConfig,
    load: bool,
    batch: int,
    seed: int,
) -> list[Row]:
    ds = load_dataset("ml-100k")
    ids = sorted(ds.interactions["user_id"].unique())
    users = random.Random(seed).choices(ids, k=n_users)
    started = time.perf_counter()
    memory = MemoryGraphStore.from_dataset(ds)
    build = time.perf_counter() - started
    gc.collect()
    gc.freeze()  # as the service does once it has started (`service.runtime`)
    rows = await _measure("embedded", memory, ds, users, batch)
    rows.append(("embedded", "build from ML-100K", f"{build * 1000:.0f} ms", ""))
    if uri is not None:
        rows += await _bolt_rows(config, ds, users[:n_bolt_users], load, batch)
    else:
        async with _local_arcadedb() as local:
            if local is not None:
                rows += await _bolt_rows(local, ds, users[:n_bolt_users], True, batch)
    return rows


def _synthetic(spec: str, users: int, bolt_users: int, bolt_max: int, seed: int) -> None:
    try:
        sizes = [int(part.replace("_", "")) for part in spec.split(",") if part.strip()]
    except ValueError as err:
        raise UserInputError(f"--synthetic takes sizes like 100000,1000000: {err}") from err
    if not sizes or min(sizes) < 100:
        raise UserInputError("--synthetic sizes must be >= 100 interactions")
    rows = synthetic_rows(sizes, users, bolt_users, bolt_max, seed)
    table = Table(
        "store",
        "interactions",
        "operation / figure",
        "p50 ms",
        "p99 ms",
        title=f"graph store on seeded power-law graphs: {users:,} random users "
        f"({bolt_users:,} on Bolt, sizes <= {bolt_max:,}), sequential calls",
    )
    for row in rows:
        table.add_row(*row)
    console.print(table)


def bench_graph(
    users: Annotated[int, typer.Option(min=1, help="random ML-100K users to time")] = 1000,
    uri: Annotated[str | None, typer.Option(help="Bolt URI; default: a local ArcadeDB")] = None,
    user: Annotated[str, typer.Option(help="Bolt user")] = "neo4j",
    password: Annotated[str, typer.Option(help="Bolt password")] = "",
    database: Annotated[str, typer.Option(help="Bolt database")] = "neo4j",
    load: Annotated[bool, typer.Option(help="load ML-100K into --uri first")] = False,
    batch: Annotated[int, typer.Option(min=1, help="interactions per ingest batch")] = 100,
    seed: Annotated[int, typer.Option(help="user sample seed")] = 0,
    bolt_users: Annotated[
        int | None, typer.Option(min=1, help="users timed on Bolt (default: --users)")
    ] = None,
    synthetic: Annotated[
        str | None, typer.Option(help="N[,N...]: seeded power-law graphs of N interactions")
    ] = None,
    bolt_max: Annotated[
        int, typer.Option(min=0, help="--synthetic: largest size loaded into Bolt")
    ] = 100_000,
) -> None:
    """Latency p50/p99 of history, candidates and chains on both stores; ingestion rate."""
    if synthetic is not None:
        _synthetic(synthetic, users, bolt_users or min(users, 200), bolt_max, seed)
        return
    config = Neo4jConfig(uri=uri or "", user=user, password=password, database=database)
    rows = asyncio.run(_run(users, bolt_users or users, uri, config, load, batch, seed))
    table = Table(
        "store",
        "operation",
        "p50 ms / rate",
        "p99 ms",
        title=f"graph store: {users:,} random ML-100K users "
        f"({bolt_users or users:,} on Bolt), sequential calls",
    )
    for row in rows:
        table.add_row(*row)
    console.print(table)
