"""`r2rec graph load` end to end on the embedded store (Bolt loading is covered by the
contract suite's fixtures; a full ML-100K load into ArcadeDB takes about a minute)."""

from __future__ import annotations

from typer.testing import CliRunner

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
