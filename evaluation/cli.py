"""`r2rec eval`: score models on the protocol's case files and print the metrics table.

r2rec eval --dataset ml-100k --model sasrec
r2rec eval --dataset ml-latest-small --model all --out results/ml-latest-small.json
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from evaluation.protocol import SPLITS, ProtocolConfig
from r2rec.errors import UserInputError
from r2rec.paths import results_dir

console = Console()


def eval_command(
    dataset: Annotated[str, typer.Option(help="Dataset name (r2rec data list)")] = "ml-100k",
    model: Annotated[
        str, typer.Option(help="A baseline name, or 'all' for every baseline")
    ] = "all",
    split: Annotated[str, typer.Option(help="valid or test")] = "test",
    seed: Annotated[int, typer.Option(help="Protocol seed (candidate sampling)")] = 0,
    out: Annotated[
        Path | None, typer.Option(help="JSON results path (a .md table is written beside it)")
    ] = None,
) -> None:
    """Evaluate one model or every baseline on the protocol; prints a Markdown table."""
    from baselines import BASELINE_NAMES, make_baseline
    from evaluation.runner import evaluate, markdown_table, write_results
    from recdata import load_dataset

    if split not in SPLITS:
        raise UserInputError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    names = list(BASELINE_NAMES) if model == "all" else [model]
    unknown = [n for n in names if n not in BASELINE_NAMES]
    if unknown:
        raise UserInputError(
            f"unknown model {unknown[0]!r}; choose from: all, {', '.join(BASELINE_NAMES)}"
        )
    data = load_dataset(dataset)
    protocol = ProtocolConfig(seed=seed)
    results = []
    for name in names:
        with console.status(f"[bold]{name}[/]: tuning, fitting and ranking on {dataset}/{split}"):
            result = evaluate(make_baseline(name), data, split, protocol)
        console.print(
            f"{name}: HR@1 {result.metrics['HR@1']:.4f}  NDCG@10 {result.metrics['NDCG@10']:.4f}"
            f"  ({result.runtime_seconds:.1f} s)"
        )
        results.append(result)
    path = out or results_dir() / dataset / f"{split}-seed{seed}-{model}.json"
    write_results(results, path)
    typer.echo(markdown_table(results))
    console.print(f"[dim]wrote {path} and {path.with_suffix('.md')}[/]")
