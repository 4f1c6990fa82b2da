"""Fixtures for the graph-store contract suite: one store per backend, loaded with a toy graph.

Backends: ``memory`` always; ``arcadedb`` (a real Bolt server from tests/harness, one per
test session; skipped if scripts/setup_arcadedb.sh was not run); ``neo4j`` when
``NEO4J_URI`` (+ ``NEO4J_USER``, ``NEO4J_PASSWORD``, ``NEO4J_DATABASE``) points at one.
Bolt stores are wiped (User/Item nodes only) before each test.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable

import pandas as pd
import pytest
import pytest_asyncio

from graph_store.base import GraphStoreBase
from graph_store.memory import MemoryGraphStore
from graph_store.neo4j_store import Neo4jConfig, Neo4jGraphStore
from tests.harness.arcadedb import ArcadeDBServer

BACKENDS = ["memory", "arcadedb", "neo4j"]
StoreFactory = Callable[[pd.DataFrame, pd.DataFrame], Awaitable[GraphStoreBase]]


def toy_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """a: m1 m2 m3; b: m1 m2 m4 m5 (m4 after the shared ones); c: m1 m5; m6 never seen."""
    inter = pd.DataFrame(
        [
            ("a", "m1", 10, float("nan")),
            ("a", "m2", 20, 4.0),
            ("a", "m3", 30, 5.0),
            ("b", "m1", 5, 3.0),
            ("b", "m2", 6, 3.0),
            ("b", "m4", 40, 2.0),
            ("b", "m5", 3, 1.0),
            ("c", "m1", 1, 5.0),
            ("c", "m5", 2, 4.0),
        ],
        columns=["user_id", "item_id", "timestamp", "rating"],
    )
    items = pd.DataFrame(
        {
            "item_id": [f"m{k}" for k in range(1, 7)],
            "title": ["Alien", "Brazil", "Casablanca", "Dune", "Eraserhead", "Fargo"],
            "year": ["1979", "1985", "1942", "1984", "1977", "1996"],
        }
    )
    return inter, items


def neo4j_env_config() -> Neo4jConfig | None:
    uri = os.environ.get("NEO4J_URI")
    if not uri:
        return None
    return Neo4jConfig(
        uri=uri,
        user=os.environ.get("NEO4J_USER", "neo4j"),
        password=os.environ.get("NEO4J_PASSWORD", ""),
        database=os.environ.get("NEO4J_DATABASE", "neo4j"),
    )


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def bolt_config(backend: str, request: pytest.FixtureRequest) -> Neo4jConfig | None:
    if backend == "memory":
        return None
    if backend == "neo4j":
        config = neo4j_env_config()
        if config is None:
            pytest.skip("NEO4J_URI not set")
        return config
    server: ArcadeDBServer = request.getfixturevalue("arcadedb")
    return Neo4jConfig(
        uri=server.uri, user=server.user, password=server.password, database=server.database
    )


@pytest_asyncio.fixture
async def make_store(bolt_config: Neo4jConfig | None) -> AsyncIterator[StoreFactory]:
    """``await make_store(interactions, items)`` -> a store holding exactly that data."""
    opened: list[GraphStoreBase] = []

    async def factory(inter: pd.DataFrame, items: pd.DataFrame) -> GraphStoreBase:
        if bolt_config is None:
            store: GraphStoreBase = MemoryGraphStore.from_frames(inter, items)
        else:
            bolt = await Neo4jGraphStore.connect(bolt_config)
            await bolt.clear()
            await bolt.load_frames(inter, items, chunk_size=500)
            store = bolt
        opened.append(store)
        return store

    yield factory
    for store in opened:
        await store.close()


@pytest_asyncio.fixture
async def toy(make_store: StoreFactory) -> GraphStoreBase:
    return await make_store(*toy_frames())
