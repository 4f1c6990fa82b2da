"""The `r2rec` command line: one entry point, one sub-command group per part.

    r2rec data list | import INTERACTIONS ITEMS --name NAME
    r2rec eval --dataset ml-100k --model all
    r2rec graph load --dataset ml-100k --store memory
    r2rec bench graph

This package is the top layer, the only one that imports every part: each group is a
module of `r2rec.commands` (``data``, ``graph``, ``eval``, ``model``, ``train``,
``serve``) and imports its heavy dependencies (torch, transformers) inside the command,
so ``r2rec --help`` stays fast. Usage errors exit with code 2 and a one-line message.
"""

from __future__ import annotations

import typer

from common.errors import UserInputError
from graph_store.bench import bench_graph
from r2rec.commands.data import app as data_app
from r2rec.commands.eval import eval_command
from r2rec.commands.graph import app as graph_app
from r2rec.commands.model import model_app
from r2rec.commands.serve import serve_command
from r2rec.commands.train import publish_command, retrain_command, train_app
from service.bench import bench_service
from training.bench import bench_train
from training.bench_offline import bench_offline

app = typer.Typer(
    name="r2rec",
    help="R2Rec: a reasoning recommender (graph store, LLM ranker, training, service).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(
    help="Benchmarks that print figures (latency, throughput).", no_args_is_help=True
)

app.add_typer(data_app, name="data")
app.command("eval")(eval_command)
app.add_typer(bench_app, name="bench")
app.add_typer(graph_app, name="graph")
bench_app.command("graph")(bench_graph)
app.add_typer(model_app, name="model")
app.command("serve")(serve_command)
bench_app.command("service")(bench_service)
app.add_typer(train_app, name="train")
model_app.command("publish")(publish_command)
app.command("retrain")(retrain_command)
bench_app.command("train")(bench_train)
bench_app.command("offline")(bench_offline)


def main() -> None:
    """Entry point: bad user input is one line on stderr and exit code 2, no traceback."""
    try:
        app()
    except UserInputError as err:
        typer.echo(f"error: {err}", err=True)
        raise SystemExit(2) from None
