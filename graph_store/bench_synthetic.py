"""`r2rec bench graph --synthetic N[,N...]`: both stores on seeded power-law graphs (#18).

For each size N it makes `graph_store.synthetic.synthetic_graph(N, seed)` (Zipf-like item
popularity, lognormal user activity) and measures:

- embedded: the index build time, the process's peak RSS (each size runs in a fresh
  child process, so the figure is that size's alone), and p50/p99 per call of
  ``candidates(n=20)``, ``candidates(among=those 20)``, ``chains()`` and
  ``chains(candidates=those 20)`` for ``--users`` random users (after warm-up calls);
- Bolt, for sizes up to ``--bolt-max`` (loads are slow: the load rate is printed): a
  throw-away local ArcadeDB (`tests/harness/arcadedb.py`; heap from
  ``R2REC_ARCADEDB_HEAP``) is loaded through ``load_frames`` and timed the same way; the
  server's peak RSS is read from /proc.

    r2rec bench graph --synthetic 100000,1000000 --bolt-max 100000

Targets from the issue: embedded at 10M p99 < 5 ms and < 4 GB; Bolt p99 < 30 ms.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import random
import resource
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

from common.harness import load_harness
from graph_store.base import GraphStoreBase
from graph_store.memory import MemoryGraphStore
from graph_store.neo4j_store import Neo4jConfig, Neo4jGraphStore
from graph_store.synthetic import SyntheticGraph, synthetic_graph

Row = tuple[str, ...]
WARM_UP = 50
LOAD_CHUNK = 5000


def _sample(graph: SyntheticGraph, n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [graph.user_id(int(graph.user[rng.randrange(len(graph.user))])) for _ in range(n)]


async def _timings(store: GraphStoreBase, users: list[str]) -> list[tuple[str, float, float]]:
    """p50/p99 ms of the four request calls, one call at a time, with the store's objects
    out of the garbage collector's view, as the service has them once started."""
    gc.collect()
    gc.freeze()
    shown = {u: [c.item.item_id for c in await store.candidates(u, 20)] for u in set(users)}
    calls: list[tuple[str, Callable[[str], Awaitable[object]]]] = [
        ("candidates(n=20)", lambda u: store.candidates(u, 20)),
        ("candidates(among=20)", lambda u: store.candidates(u, 20, among=shown[u])),
        ("chains()", lambda u: store.chains(u)),
        ("chains(candidates=20)", lambda u: store.chains(u, candidates=shown[u] or None)),
    ]
    out = []
    for label, call in calls:
        for user in users[:WARM_UP]:
            await call(user)
        times = []
        for user in users:
            started = time.perf_counter()
            await call(user)
            times.append((time.perf_counter() - started) * 1000)
        out.append((label, float(np.percentile(times, 50)), float(np.percentile(times, 99))))
    return out


def _embedded(n: int, n_users: int, seed: int) -> list[Row]:
    """One size on the embedded store (run in a fresh process: peak RSS is this size's)."""
    started = time.perf_counter()
    graph = synthetic_graph(n, seed)
    made = time.perf_counter() - started
    started = time.perf_counter()
    store = MemoryGraphStore.from_index(graph.index())
    build = time.perf_counter() - started
    timings = asyncio.run(_timings(store, _sample(graph, n_users, seed)))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    size = f"{n:,} ({graph.n_users:,} u, {graph.n_items:,} i)"
    rows: list[Row] = [
        ("embedded", size, label, f"{p50:.2f}", f"{p99:.2f}") for label, p50, p99 in timings
    ]
    rows.append(("embedded", size, f"build {build:.1f} s (graph {made:.1f} s)", "", ""))
    rows.append(("embedded", size, f"peak RSS {rss:.2f} GiB", "", ""))
    return rows


def _server_peak_gib(root: Path) -> float | None:
    """Peak RSS of the server process running in ``root`` (Linux /proc), if found."""
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cwd").resolve() == root.resolve():
                for line in (proc / "status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 2**20
        except OSError:
            continue
    return None


async def _bolt(config: Neo4jConfig, n: int, n_users: int, seed: int, root: Path) -> list[Row]:
    graph = synthetic_graph(n, seed)
    size = f"{n:,} ({graph.n_users:,} u, {graph.n_items:,} i)"
    store = await Neo4jGraphStore.connect(config)
    try:
        await store.clear()
        started = time.perf_counter()
        for start in range(0, n, LOAD_CHUNK):
            inter, items = graph.frames(start, min(start + LOAD_CHUNK, n))
            await store.load_frames(inter, items, chunk_size=LOAD_CHUNK)
        load = time.perf_counter() - started
        timings = await _timings(store, _sample(graph, n_users, seed))
    finally:
        await store.close()
    rows: list[Row] = [
        ("bolt", size, label, f"{p50:.2f}", f"{p99:.2f}") for label, p50, p99 in timings
    ]
    rows.append(("bolt", size, f"load {load:.0f} s ({n / load:,.0f} rows/s)", "", ""))
    peak = _server_peak_gib(root)
    if peak is not None:
        rows.append(("bolt", size, f"server peak RSS {peak:.2f} GiB", "", ""))
    return rows


def synthetic_rows(
    sizes: list[int], n_users: int, bolt_users: int, bolt_max: int, seed: int
) -> list[Row]:
    """Every size on the embedded store, then the sizes up to ``bolt_max`` on Bolt."""
    rows: list[Row] = []
    spawn = multiprocessing.get_context("spawn")
    for n in sizes:
        with spawn.Pool(1) as pool:
            rows += pool.apply(_embedded, (n, n_users, seed))
    bolt_sizes = [n for n in sizes if n <= bolt_max]
    if not bolt_sizes:
        return rows
    harness = load_harness("arcadedb")  # the test harness starts the server
    if harness is None:
        return [*rows, ("bolt", "-", "no local Bolt server (tests/harness missing)", "", "")]
    try:
        with harness.arcadedb_server() as server:
            config = Neo4jConfig(
                uri=server.uri,
                user=server.user,
                password=server.password,
                database=server.database,
                query_timeout_s=120.0,
            )
            for n in bolt_sizes:
                rows += asyncio.run(_bolt(config, n, bolt_users, seed, server.root_dir))
    except harness.ArcadeDBUnavailable as err:
        rows.append(("bolt", "-", f"no local Bolt server: {err}", "", ""))
    return rows
