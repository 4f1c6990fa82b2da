"""The service on a real Bolt server (ArcadeDB) that goes away mid-run: 503 with JSON."""

from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager

import pytest
from fastapi.testclient import TestClient

from graph_store.neo4j_store import Neo4jConfig, Neo4jGraphStore
from service.main import create_app
from tests.factories import make_dataset
from tests.harness.arcadedb import ArcadeDBServer, ArcadeDBUnavailable, arcadedb_server
from tests.harness.vllm import servers_required
from tests.service.conftest import settings_for


async def _load(config: Neo4jConfig) -> None:
    pairs = [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2), ("b", 4), ("c", 2), ("c", 5)]
    rows = [(user, str(item), ts) for ts, (user, item) in enumerate(pairs)]
    dataset = make_dataset(rows, n_items=8)
    store = await Neo4jGraphStore.connect(config)
    try:
        await store.load_frames(dataset.interactions, dataset.items)
    finally:
        await store.close()


@pytest.mark.servers  # starts its own ArcadeDB
def test_bolt_backed_service_answers_then_503s_when_the_server_dies(tiny_model_dir) -> None:
    try:
        server_cm: AbstractContextManager[ArcadeDBServer] | None = arcadedb_server()
        assert server_cm is not None
        server = server_cm.__enter__()
    except ArcadeDBUnavailable as err:
        if servers_required():
            raise
        pytest.skip(str(err))
    try:
        config = Neo4jConfig(
            uri=server.uri,
            user=server.user,
            password=server.password,
            database=server.database,
            query_timeout_s=2.0,
        )
        asyncio.run(_load(config))
        settings = settings_for(
            tiny_model_dir,
            graph_store="neo4j",
            neo4j_uri=server.uri,
            neo4j_user=server.user,
            neo4j_password=server.password,
            neo4j_database=server.database,
            neo4j_timeout_s=2.0,
        )
        with TestClient(create_app(settings)) as client:
            body = client.post("/recommend", json={"user_id": "a", "k": 3, "explain": False})
            assert body.status_code == 200
            assert {i["item_id"] for i in body.json()["items"]} <= {"4", "5", "0", "6", "7"}
            assert client.get("/readyz").json()["checks"]["graph_store"]["ok"] is True
            server_cm.__exit__(None, None, None)
            server_cm = None
            down = client.post("/recommend", json={"user_id": "a", "k": 3, "explain": False})
            assert down.status_code == 503
            assert down.json()["error"] == "graph_store_unavailable"
            internals = (server.uri, server.database, "bolt://", "127.0.0.1")
            assert not [x for x in internals if x in down.text], down.text
            ingest = client.post(
                "/interactions",
                json={"interactions": [{"user_id": "a", "item_id": "9", "timestamp": 1}]},
            )
            assert ingest.status_code == 503
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
            assert ready.json()["checks"]["graph_store"]["detail"] in {"unreachable", "timed out"}
            assert not [x for x in internals if x in ready.text], ready.text
            assert not [x for x in internals if x in ingest.text], ingest.text
    finally:
        if server_cm is not None:
            server_cm.__exit__(None, None, None)
