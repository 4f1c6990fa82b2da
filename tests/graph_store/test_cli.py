"""`r2rec graph load` end to end on the embedded store (Bolt loading is covered by the
contract suite's fixtures; a full ML-100K load into ArcadeDB takes about a minute)."""

from __future__ import annotations

from typer.testing import CliRunner

from common.errors import UserInputError
from r2rec.cli import app as root_app


def test_load_train_split_into_memory() -> None:
    args = ["graph", "load", "--dataset", "ml-100k", "--store", "memory", "--split", "train"]
    result = CliRunner().invoke(root_app, args)
    assert result.exit_code == 0, result.output
    # the protocol holds out each evaluated user's last interaction (943 users, all >= 20)
    assert "943 users, 1,682 items, 99,057 interactions" in result.output


def test_graph_commands_are_registered_on_the_root_cli() -> None:
    runner = CliRunner()
    assert runner.invoke(root_app, ["graph", "load", "--help"]).exit_code == 0
    assert runner.invoke(root_app, ["bench", "graph", "--help"]).exit_code == 0


def test_rebuild_adjacency_restores_the_lists_from_the_edges(arcadedb) -> None:
    import asyncio

    from graph_store.memory import MemoryGraphStore
    from graph_store.neo4j_store import Neo4jConfig, Neo4jGraphStore
    from tests.graph_store.conftest import toy_frames

    config = Neo4jConfig(
        uri=arcadedb.uri, user=arcadedb.user, password=arcadedb.password, database=arcadedb.database
    )
    inter, items = toy_frames()

    async def load_then_strip() -> None:
        store = await Neo4jGraphStore.connect(config)
        await store.clear()
        await store.load_frames(inter, items)
        await store._write_once(
            "MATCH (n) REMOVE n.adj_items, n.adj_ts, n.raters, n.raters_ts, "
            "n.recent_items, n.recent_ts"
        )
        await store.close()

    async def candidates() -> list:
        store = await Neo4jGraphStore.connect(config, create_schema=False)  # no auto-rebuild
        try:
            return await store.candidates("a", 3)
        finally:
            await store.close()

    asyncio.run(load_then_strip())
    expected = asyncio.run(MemoryGraphStore.from_frames(inter, items).candidates("a", 3))
    assert asyncio.run(candidates()) != expected
    env = {
        "NEO4J_URI": config.uri,
        "NEO4J_USER": config.user,
        "NEO4J_PASSWORD": config.password,
        "NEO4J_DATABASE": config.database,
    }
    result = CliRunner().invoke(root_app, ["graph", "rebuild-adjacency"], env=env)
    assert result.exit_code == 0, result.output
    assert asyncio.run(candidates()) == expected


def test_bench_graph_synthetic_prints_a_table_and_refuses_bad_sizes() -> None:
    runner = CliRunner()
    bad = runner.invoke(root_app, ["bench", "graph", "--synthetic", "ten"])
    assert isinstance(bad.exception, UserInputError)  # the CLI's entry point: exit 2
    result = runner.invoke(
        root_app, ["bench", "graph", "--synthetic", "3000", "--users", "5", "--bolt-max", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "candidates(n=20)" in result.output and "peak RSS" in result.output
