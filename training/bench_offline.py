"""`r2rec bench offline --synthetic N`: the offline side at size (#18), stage by stage.

On a seeded power-law graph of N interactions (`graph_store.synthetic`), stored as an
imported dataset ``synthetic-N``, each stage runs in a fresh process (so its peak RSS is
its own) and reports wall time and peak memory:

1. ``dataset``: make the graph and write it as a dataset (parquet);
2. ``cases``: the protocol's valid and test case files (`evaluation.protocol`);
3. ``evaluate``: one evaluation, the popularity ranker on every test case;
4. ``sasrec``: SASRec fitted on the test split's training log for ``--sasrec-epochs``
   (time per epoch is what a full fit multiplies);
5. ``data``: the R2Rec training-data build (`training.data`: per-round graphs, history,
   chains, prompts, traces) for the first ``--data-users`` users, streamed to
   ``examples.jsonl`` row by row; the time per user gives the whole build.

    r2rec bench offline --synthetic 10000000 --data-users 2000 --sasrec-epochs 1

Past one machine each stage has an existing engine: the graph on a Neo4j cluster (reads
on replicas), the LLM on vLLM replicas behind a load balancer, and the export and
training-data build as Ray tasks over user shards (`training.distributed`, which runs
here on a local Ray).
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from common.errors import UserInputError

console = Console()
Stage = Callable[..., dict[str, Any]]


def _name(n: int) -> str:
    return f"synthetic-{n}"


def _load(n: int) -> Any:
    from recdata import load_dataset

    return load_dataset(_name(n))


def stage_dataset(n: int, seed: int) -> dict[str, Any]:
    import numpy as np

    from common.paths import datasets_dir
    from graph_store.synthetic import synthetic_graph
    from recdata.importer import write_dataset
    from recdata.schema import Dataset

    graph = synthetic_graph(n, seed)
    inter, items = graph.frames(0, n)
    inter["rating"] = np.nan
    data = Dataset.from_frames(_name(n), inter, items)
    write_dataset(data, datasets_dir(), overwrite=True)
    return {"users": graph.n_users, "items": graph.n_items}


def stage_cases(n: int, seed: int) -> dict[str, Any]:
    from evaluation.protocol import ProtocolConfig, write_cases

    write_cases(_load(n), ProtocolConfig(seed=seed))
    return {}


def stage_evaluate(n: int, seed: int) -> dict[str, Any]:
    from baselines import make_baseline
    from evaluation.protocol import ProtocolConfig
    from evaluation.runner import evaluate

    result = evaluate(make_baseline("popularity"), _load(n), "test", ProtocolConfig(seed=seed))
    return {"cases": result.metrics["cases"], "HR@1": round(result.metrics["HR@1"], 4)}


def stage_sasrec(n: int, seed: int, epochs: int) -> dict[str, Any]:
    from baselines.sasrec import SASRecConfig, SASRecRanker
    from evaluation.protocol import training_log

    data = _load(n)
    log = training_log(data, "test")
    ranker = SASRecRanker(SASRecConfig(epochs=epochs, seed=seed))
    started = time.perf_counter()
    ranker.fit(log, data.items)
    return {"s_per_epoch": round((time.perf_counter() - started) / epochs, 1)}


def stage_data(n: int, seed: int, users: int) -> dict[str, Any]:
    from training.data import DataConfig, build_dataset

    config = DataConfig(dataset=_name(n), limit_users=users, targets_per_user=1, seed=seed)
    built = build_dataset(config, _load(n), name=f"{_name(n)}-bench-data")
    return {"users": users, "rows": built.manifest["counts"]["rows"]}


def _timed(stage: Stage, *args: Any) -> dict[str, Any]:
    started = time.perf_counter()
    out = stage(*args)
    out["seconds"] = round(time.perf_counter() - started, 1)
    out["peak_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    return out


STAGES = ("dataset", "cases", "evaluate", "sasrec", "data")


def run_offline(
    n: int, seed: int, data_users: int, sasrec_epochs: int, only: tuple[str, ...] = STAGES
) -> list[tuple]:
    stages: list[tuple[str, Stage, tuple[Any, ...]]] = [
        ("dataset", stage_dataset, (n, seed)),
        ("cases", stage_cases, (n, seed)),
        ("evaluate", stage_evaluate, (n, seed)),
        ("sasrec", stage_sasrec, (n, seed, sasrec_epochs)),
        ("data", stage_data, (n, seed, data_users)),
    ]
    rows = []
    spawn = multiprocessing.get_context("spawn")
    for label, stage, args in stages:
        if label not in only:
            continue
        with spawn.Pool(1) as pool:
            out = pool.apply(_timed, (stage, *args))
        console.print(f"{label}: {out}")
        rows.append((label, out))
    return rows


def bench_offline(
    synthetic: Annotated[int, typer.Option(min=1000, help="Interactions in the synthetic graph")],
    data_users: Annotated[int, typer.Option(min=1, help="Users in the timed data build")] = 1000,
    sasrec_epochs: Annotated[int, typer.Option(min=1, help="SASRec epochs timed")] = 1,
    seed: Annotated[int, typer.Option(help="Graph, cases and data seed")] = 0,
    stages: Annotated[
        str, typer.Option(help="Stages to run, in order (later ones need the earlier ones' files)")
    ] = ",".join(STAGES),
) -> None:
    """Time and peak memory of the offline stages on a synthetic graph (one process each)."""
    n = synthetic
    only = tuple(s.strip() for s in stages.split(",") if s.strip())
    unknown = sorted(set(only) - set(STAGES))
    if unknown:
        raise UserInputError(f"--stages: unknown {unknown}; known: {', '.join(STAGES)}")
    rows = run_offline(n, seed, data_users, sasrec_epochs, only)
    table = Table(title=f"offline stages on a synthetic graph of {n:,} interactions")
    for column in ("stage", "seconds", "peak RSS GiB", "figures"):
        table.add_column(column)
    for label, out in rows:
        rest = {k: v for k, v in out.items() if k not in ("seconds", "peak_gib")}
        table.add_row(label, str(out["seconds"]), str(out["peak_gib"]), str(rest))
    console.print(table)
