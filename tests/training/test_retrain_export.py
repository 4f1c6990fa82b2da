"""The retrain job trains on what the service ingested: interactions posted to
``POST /interactions`` reach the export snapshot and the training rows, with the embedded
store (read from the service's journal while it runs) and with a real Bolt server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
from fastapi.testclient import TestClient

from common.paths import datasets_dir
from graph_store.neo4j_store import Neo4jConfig, Neo4jGraphStore
from recdata import load_dataset
from recdata.importer import write_dataset
from service.main import create_app
from tests.factories import make_dataset
from tests.harness.arcadedb import ArcadeDBServer
from tests.service.conftest import settings_for
from training.datasets import read_examples
from training.retrain import RetrainConfig, job_dir, run_retrain, stage_done

NEW_USER = "0-new-user"  # sorts first, so limit_users=1 trains on exactly this user


def _post(client: TestClient, user: str, items: list[str], start: int) -> None:
    rows = [
        {"user_id": user, "item_id": item, "timestamp": start + k, "rating": 4}
        for k, item in enumerate(items)
    ]
    answer = client.post("/interactions", json={"interactions": rows})
    assert answer.status_code == 200, answer.text


def test_embedded_store_posts_reach_the_next_retrain(tiny_model_dir: Path) -> None:
    items = [str(i) for i in range(1, 13)]
    with TestClient(create_app(settings_for(tiny_model_dir))) as client:
        _post(client, NEW_USER, items, start=1_700_000_000)
        # the service keeps running (and holds its journal) while the job exports
        record = run_retrain(
            RetrainConfig(
                dataset="ml-100k",
                name="live",
                limit_users=1,
                targets_per_user=1,
                stop_after="data",
            )
        )
    export = stage_done("live", "export")
    assert export is not None and export["dataset"] == "ml-100k-live"
    assert export["added_since_dataset"] == len(items)
    live = load_dataset("ml-100k-live")
    mine = live.interactions[live.interactions["user_id"] == NEW_USER]
    assert sorted(mine["item_id"]) == sorted(items) and set(mine["rating"]) == {4.0}
    examples = read_examples(Path(record["folder"]))
    assert examples and {e["user_id"] for e in examples} == {NEW_USER}
    job = json.loads((job_dir("live") / "job.json").read_text())
    assert job["sft"]["dataset"] == "ml-100k-live"  # evaluation follows the snapshot


def test_unchanged_store_keeps_the_dataset_name() -> None:
    run_retrain(RetrainConfig(dataset="ml-100k", name="same", stop_after="export"))
    export = stage_done("same", "export")
    assert export is not None and export["dataset"] == "ml-100k"
    assert export["added_since_dataset"] == 0


def test_bolt_store_posts_reach_the_export(tiny_model_dir: Path, arcadedb: ArcadeDBServer) -> None:
    config = Neo4jConfig(
        uri=arcadedb.uri,
        user=arcadedb.user,
        password=arcadedb.password,
        database=arcadedb.database,
    )
    pairs = [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2), ("b", 4), ("c", 2), ("c", 5)]
    toy = make_dataset([(u, str(i), ts) for ts, (u, i) in enumerate(pairs)], n_items=8)
    write_dataset(toy, datasets_dir(), overwrite=True)

    async def load() -> None:
        store = await Neo4jGraphStore.connect(config)
        try:
            await store.clear()
            await store.load_frames(toy.interactions, toy.items)
        finally:
            await store.close()

    asyncio.run(load())
    settings = settings_for(
        tiny_model_dir,
        dataset="toy",
        graph_store="neo4j",
        neo4j_uri=arcadedb.uri,
        neo4j_user=arcadedb.user,
        neo4j_password=arcadedb.password,
        neo4j_database=arcadedb.database,
    )
    with TestClient(create_app(settings)) as client:
        _post(client, "d", ["6", "7"], start=100)
    run_retrain(
        RetrainConfig(
            dataset="toy",
            name="bolt",
            stop_after="export",
            store="neo4j",
            neo4j_uri=arcadedb.uri,
            neo4j_user=arcadedb.user,
            neo4j_password=arcadedb.password,
            neo4j_database=arcadedb.database,
        )
    )
    export = stage_done("bolt", "export")
    assert export is not None and export["dataset"] == "toy-live"
    assert export["source"].startswith("neo4j ") and arcadedb.password not in json.dumps(export)
    live = load_dataset("toy-live").interactions
    assert len(live) == len(pairs) + 2
    assert set(map(tuple, live[live["user_id"] == "d"][["item_id", "timestamp"]].values)) == {
        ("6", 100),
        ("7", 101),
    }


def test_graph_export_cli_writes_files_data_import_reads(tmp_path: Path) -> None:
    out = tmp_path / "export"
    run = [sys.executable, "-m", "r2rec"]
    done = subprocess.run(
        [*run, "graph", "export", "--store", "memory", "--dataset", "ml-100k", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "100,000 interactions" in done.stdout
    again = subprocess.run(
        [
            *run,
            "data",
            "import",
            str(out / "interactions.csv"),
            str(out / "items.csv"),
            "--name",
            "reimported",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    back = load_dataset("reimported")
    original = load_dataset("ml-100k")
    assert back.summary() == original.summary()
    pd.testing.assert_frame_equal(
        back.sorted_interactions().reset_index(drop=True),
        original.sorted_interactions().reset_index(drop=True),
    )
