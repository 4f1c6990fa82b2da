"""Outages surface as GraphStoreUnavailable (the service's 503), never as driver errors."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from graph_store.neo4j_store import Neo4jConfig, Neo4jGraphStore
from graph_store.types import GraphStoreError, GraphStoreUnavailable
from tests.harness.arcadedb import ArcadeDBServer, free_port

pytestmark = pytest.mark.asyncio


def fast(
    uri: str, password: str = "x", user: str = "neo4j", database: str = "neo4j"
) -> Neo4jConfig:
    """Short connect/acquire/retry limits so outages surface within a second or two."""
    return Neo4jConfig(
        uri=uri,
        user=user,
        password=password,
        database=database,
        connect_timeout_s=0.5,
        acquire_timeout_s=0.5,
        query_timeout_s=3.0,
        retry_time_s=0.2,
    )


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never says a word."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


async def test_unreachable_server() -> None:
    config = fast(f"bolt://127.0.0.1:{free_port()}")
    with pytest.raises(GraphStoreUnavailable, match="unavailable"):
        await Neo4jGraphStore.connect(config)


async def test_server_that_never_answers_times_out(silent_port: int) -> None:
    config = fast(f"bolt://127.0.0.1:{silent_port}")
    with pytest.raises(GraphStoreUnavailable):
        await Neo4jGraphStore.connect(config)


async def test_query_timeout_is_unavailable(arcadedb: ArcadeDBServer) -> None:
    config = Neo4jConfig(
        uri=arcadedb.uri,
        user=arcadedb.user,
        password=arcadedb.password,
        database=arcadedb.database,
        query_timeout_s=1e-6,
    )
    with pytest.raises(GraphStoreUnavailable, match="timed out"):
        await Neo4jGraphStore.connect(config)


async def test_wrong_password_is_unavailable(arcadedb: ArcadeDBServer) -> None:
    config = fast(arcadedb.uri, "wrong", user=arcadedb.user, database=arcadedb.database)
    with pytest.raises(GraphStoreUnavailable, match="login refused"):
        await Neo4jGraphStore.connect(config)


async def test_malformed_uri_is_a_configuration_error() -> None:
    with pytest.raises(GraphStoreError, match="configuration"):
        await Neo4jGraphStore.connect(Neo4jConfig(uri="http://nowhere:1"))
