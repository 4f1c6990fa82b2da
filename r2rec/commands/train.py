"""`r2rec train ...`, `r2rec model publish`, `r2rec retrain`: the training command line.

    r2rec train data --dataset ml-100k [--split valid] [--limit-users N] [--teacher-url URL]
    r2rec train sft  [--config FILE] [--name N] [--data D] [--max-steps S] [--set key=value]
    r2rec train grpo [--config FILE] --init-run SFT_RUN [--set key=value]
    r2rec train listwise [--config FILE] [--set key=value]     # fused letter-logit LoRA
    r2rec train hidden-head [--config FILE] [--set key=value]  # fused hidden-state head
    r2rec train explainer [--config FILE] [--set key=value]    # its explainer (thoughts)
    r2rec train explainer-grpo --set init_run=RUN --set out_dir=DIR  # GRPO on it
    r2rec train rating-head [--config FILE] [--set key=value]  # rating at <rate>, one pass
    r2rec train data --task rating --dataset ml-100k               # rating data
    r2rec train grpo --task rating --init base|sft --name N        # RecZero | RecOne
    r2rec model publish RUN [--force]
    r2rec retrain --dataset ml-100k [--limit-users N] [--no-grpo]
    r2rec retrain --config training/configs/retrain-quick.yaml    # the quick profile
    r2rec retrain --dataset ml-latest-small --rank-recipe fused \
        --feature-results results/ml-latest-small/baselines.json   # training.fused_job
        # (its grpo stage trains the explainer: --grpo-set max_steps=50, --no-grpo skips it)
    r2rec retrain --task rating --init sft|base [--grpo-set max_train_seconds=1800]
        # RecOne | RecZero at the rating token, published for /rate (training.rating.head_job)

Registered in ``r2rec/cli.py``. ``--task`` names a task of `training.tasks`, whose
object builds the data, picks the GRPO rewards, scores the run and owns the recipes
(``--init``). Heavy imports (torch, transformers, trl) happen inside the commands. Bad
input exits with code 2 and one line; a failed retrain stage exits 1.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from common.errors import UserInputError

C = TypeVar("C")

train_app = typer.Typer(
    help="Build training data, fine-tune (SFT) and reinforce (GRPO) the R2Rec model.",
    no_args_is_help=True,
)

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML config file.")]
TaskOpt = Annotated[
    str | None,
    typer.Option(help="rank (default) or rating (RecZero/RecOne, MAE/RMSE); sets `task`."),
]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override: key=value (repeat).")]


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")


@train_app.command("data")
def data_command(
    dataset: Annotated[str, typer.Option(help="Dataset name (r2rec data list).")] = "ml-100k",
    split: Annotated[str, typer.Option(help="Data precedes this split's targets.")] = "valid",
    limit_users: Annotated[int | None, typer.Option(help="Only the first N users.")] = None,
    targets_per_user: Annotated[int, typer.Option(help="Targets per user.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of negatives and chains.")] = 0,
    masked: Annotated[bool, typer.Option(help="Add progressively masked variants.")] = True,
    teacher_url: Annotated[str | None, typer.Option(help="OpenAI-compatible teacher.")] = None,
    teacher_model: Annotated[str | None, typer.Option(help="Teacher model name.")] = None,
    name: Annotated[str | None, typer.Option(help="Dataset folder name.")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if identical.")] = False,
    task: Annotated[
        str, typer.Option(help="rank: ranking traces; rating: rating examples (no sampling).")
    ] = "rank",
    ray_shards: Annotated[
        int | None,
        typer.Option(min=1, help="rank: build in N Ray tasks (RAY_ADDRESS: a cluster)."),
    ] = None,
) -> None:
    """Build a versioned training dataset (traces, or rating examples) under
    $R2REC_HOME/data/NAME."""
    from recdata import load_dataset
    from training.tasks import DataRequest, get_task

    chosen = get_task(task)
    request = DataRequest(
        dataset=dataset,
        split=split,
        limit_users=limit_users,
        targets_per_user=targets_per_user,
        seed=seed,
        masked=masked,
        teacher_url=teacher_url,
        teacher_model=teacher_model,
    )
    config = chosen.data_config(request)
    if ray_shards is not None:
        from training.data import DataConfig
        from training.distributed import build_dataset_ray

        if not isinstance(config, DataConfig):
            raise UserInputError(f"--ray-shards builds the rank task's data, not {task}")
        built = build_dataset_ray(config, ray_shards, name=name, force=force)
    else:
        built = chosen.build_data(config, load_dataset(dataset), name=name, force=force)
    state = "unchanged, skipped" if built.skipped else "written"
    typer.echo(f"{built.folder}: {state}; sha256 {built.manifest['sha256'][:16]}")
    typer.echo(json.dumps(built.manifest["counts"]))


def _overrides(options: dict[str, Any], sets: list[str] | None) -> dict[str, Any]:
    from training.config import parse_sets

    return {**{k: v for k, v in options.items() if v is not None}, **parse_sets(sets or [])}


@train_app.command("sft")
def sft_command(
    config: ConfigOpt = None,
    name: Annotated[str | None, typer.Option(help="Run name.")] = None,
    data: Annotated[str | None, typer.Option(help="Dataset folder name.")] = None,
    base_model: Annotated[str | None, typer.Option(help="Model folder to start from.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Optimiser steps.")] = None,
    eval_limit: Annotated[int | None, typer.Option(help="Cases per split scored.")] = None,
    full: Annotated[bool, typer.Option(help="Full fine-tuning instead of LoRA.")] = False,
    task: TaskOpt = None,
    sets: SetOpt = None,
    show_config: Annotated[bool, typer.Option(help="Print every field and exit.")] = False,
) -> None:
    """Supervised fine-tuning (TRL SFTTrainer) into $R2REC_HOME/runs/NAME."""
    from training.config import SFTConfig, describe, load_config, to_yaml

    if show_config:
        typer.echo(describe(SFTConfig))
        return
    options = {
        "name": name,
        "data": data,
        "base_model": base_model,
        "max_steps": max_steps,
        "eval_limit": eval_limit,
        "lora": False if full else None,
        "task": task,
    }
    resolved = load_config(SFTConfig, config, _overrides(options, sets))
    _logging()
    typer.echo(to_yaml(resolved))
    from training.sft import run_sft

    typer.echo(f"{run_sft(resolved)}: done")


@train_app.command("grpo")
def grpo_command(
    config: ConfigOpt = None,
    name: Annotated[str | None, typer.Option(help="Run name.")] = None,
    data: Annotated[str | None, typer.Option(help="Dataset folder name.")] = None,
    init_run: Annotated[str | None, typer.Option(help="Start from this run's model.")] = None,
    base_model: Annotated[str | None, typer.Option(help="Model folder to start from.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Optimiser steps.")] = None,
    eval_limit: Annotated[int | None, typer.Option(help="Cases per split scored.")] = None,
    task: TaskOpt = None,
    init: Annotated[
        str | None,
        typer.Option(
            help="Task rating: base = RecZero (GRPO from the base model, default); "
            "sft = RecOne (SFT cold start into NAME-coldstart, then GRPO)."
        ),
    ] = None,
    coldstart_steps: Annotated[
        int | None, typer.Option(help="RecOne: SFT cold-start optimiser steps (default 30).")
    ] = None,
    coldstart_set: Annotated[
        list[str] | None, typer.Option(help="RecOne: cold-start SFT key=value (repeat).")
    ] = None,
    sets: SetOpt = None,
    show_config: Annotated[bool, typer.Option(help="Print every field and exit.")] = False,
) -> None:
    """GRPO with the shared rewards (TRL GRPOTrainer) into $R2REC_HOME/runs/NAME."""
    from training.config import GRPOConfig, describe, load_config, parse_sets, to_yaml
    from training.rating.recipes import recipe_configs, run_recipe

    if show_config:
        typer.echo(describe(GRPOConfig))
        return
    options = {
        "name": name,
        "data": data,
        "init_run": init_run,
        "base_model": base_model,
        "max_steps": max_steps,
        "eval_limit": eval_limit,
        "task": task,
    }
    resolved = load_config(GRPOConfig, config, _overrides(options, sets))
    if init != "sft" and (coldstart_steps is not None or coldstart_set):
        raise UserInputError("--coldstart-steps/--coldstart-set go with --init sft")
    if init is None:  # either task, from init_run or the base model
        _logging()
        typer.echo(to_yaml(resolved))
        from training.grpo import run_grpo

        typer.echo(f"{run_grpo(resolved)}: done")
        return
    steps, coldstart = coldstart_steps or 30, parse_sets(coldstart_set or [])
    sft, grpo = recipe_configs(resolved, init, steps, coldstart)
    _logging()
    if sft is not None:
        typer.echo(f"RecOne: cold start {sft.name} ({sft.max_steps} SFT steps), then GRPO")
    typer.echo(to_yaml(grpo))
    typer.echo(f"{run_recipe(resolved, init, steps, coldstart)}: done")


def _experiment_config(
    cls: type[C], config: Path | None, sets: list[str] | None, show: bool
) -> C | None:
    """An experiment command's config (defaults <- --config <- --set), echoed as YAML;
    with ``show``, every field is printed instead and None returned."""
    from training.config import describe, load_config, to_yaml

    if show:
        typer.echo(describe(cls))
        return None
    resolved = load_config(cls, config, _overrides({}, sets))
    _logging()
    typer.echo(to_yaml(resolved))
    return resolved


@train_app.command("listwise")
def listwise_command(
    config: ConfigOpt = None,
    sets: SetOpt = None,
    show_config: Annotated[bool, typer.Option(help="Print every field and exit.")] = False,
    report_only: Annotated[
        bool, typer.Option(help="Only rebuild the report from the run's saved logits.")
    ] = False,
) -> None:
    """Listwise letter-logit LoRA fused with the collaborative combiner (training.listwise):
    train, choose alpha on valid, score test once; results in the config's out_dir."""
    from training.listwise import ListwiseConfig, report_saved, run_listwise

    resolved = _experiment_config(ListwiseConfig, config, sets, show_config)
    if resolved is None:
        return
    summary = report_saved(resolved) if report_only else run_listwise(resolved)
    typer.echo(json.dumps(summary["rows"], indent=2))


@train_app.command("hidden-head")
def hidden_head_command(
    config: ConfigOpt = None,
    sets: SetOpt = None,
    show_config: Annotated[bool, typer.Option(help="Print every field and exit.")] = False,
) -> None:
    """Frozen-LLM candidate states with a linear head fused with the collaborative combiner
    (training.hidden_head): extract, choose on valid, score test once; results in out_dir."""
    from training.hidden_head import HiddenHeadConfig, run_hidden_head

    resolved = _experiment_config(HiddenHeadConfig, config, sets, show_config)
    if resolved is None:
        return
    summary = run_hidden_head(resolved)
    typer.echo(json.dumps(summary["rows"], indent=2))


@train_app.command("explainer")
def explainer_command(
    config: ConfigOpt = None,
    sets: SetOpt = None,
    show_config: Annotated[bool, typer.Option(help="Print every field and exit.")] = False,
) -> None:
    """The explainer beside the fused ranker (training.explainer): LoRA with the language
    loss on short evidence thoughts about a given ranking; the run folder is out_dir."""
    from training.explainer import ExplainerConfig, train_explainer

    resolved = _experiment_config(ExplainerConfig, config, sets, show_config)
    if resolved is None:
        return
    typer.echo(json.dumps(train_explainer(resolved), indent=2, default=str))


@train_app.command("explainer-grpo")
def explainer_grpo_command(
    config: ConfigOpt = None,
    sets: SetOpt = None,
    show_config: Annotated[bool, typer.Option(help="Print every field and exit.")] = False,
) -> None:
    """GRPO on a trained explainer (training.explainer): sampled thoughts rewarded by the
    checks the service applies before serving them; the run folder is out_dir."""
    from training.explainer import ExplainerGRPOConfig, grpo_explainer

    resolved = _experiment_config(ExplainerGRPOConfig, config, sets, show_config)
    if resolved is None:
        return
    typer.echo(json.dumps(grpo_explainer(resolved), indent=2, default=str))


@train_app.command("rating-head")
def rating_head_command(
    config: ConfigOpt = None,
    sets: SetOpt = None,
    show_config: Annotated[bool, typer.Option(help="Print every field and exit.")] = False,
) -> None:
    """The rating read at <rate> after grounded analysis steps, trained there with LoRA
    (training.rating.head); blended with the best classical model on valid, test once."""
    from training.rating.head import RatingHeadConfig, run_rating_head
    from training.rating.head_report import markdown

    resolved = _experiment_config(RatingHeadConfig, config, sets, show_config)
    if resolved is None:
        return
    typer.echo(markdown(run_rating_head(resolved)["test"]))


def publish_command(
    run: Annotated[str, typer.Argument(help="Run name under $R2REC_HOME/runs.")],
    force: Annotated[bool, typer.Option(help="Publish even if not better.")] = False,
) -> None:
    """Promote a run's model if its validation HR@1 beats the published model's."""
    from training.publish import publish

    decision = publish(run, force=force)
    verb = "published" if decision.published else "not published"
    typer.echo(f"{run}: {verb} (valid HR@1 {decision.valid_hr1:.4f}): {decision.reason}")


def retrain_command(
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Job YAML (RetrainConfig fields); the options below override it. Quick "
            "profile: training/configs/retrain-quick.yaml.",
        ),
    ] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset (default ml-100k).")] = None,
    name: Annotated[str | None, typer.Option(help="Job name (default retrain-DATASET).")] = None,
    limit_users: Annotated[int | None, typer.Option(help="Only the first N users.")] = None,
    targets_per_user: Annotated[int | None, typer.Option(help="Targets per user (2).")] = None,
    sft_config: Annotated[Path | None, typer.Option(help="SFT YAML config.")] = None,
    grpo_config: Annotated[Path | None, typer.Option(help="GRPO YAML config.")] = None,
    sft_set: Annotated[list[str] | None, typer.Option(help="SFT key=value (repeat).")] = None,
    grpo_set: Annotated[list[str] | None, typer.Option(help="GRPO key=value (repeat).")] = None,
    grpo: Annotated[bool | None, typer.Option(help="Run the GRPO stage (default on).")] = None,
    task: Annotated[
        str | None, typer.Option(help="rank (R2Rec, default) or rating (RecZero/RecOne).")
    ] = None,
    init: Annotated[
        str | None, typer.Option(help="rating: GRPO from sft (RecOne, default) or base (RecZero).")
    ] = None,
    rating_recipe: Annotated[
        str | None,
        typer.Option(help="rating: head (default; published for /rate) or generate."),
    ] = None,
    rank_recipe: Annotated[
        str | None,
        typer.Option(
            help="rank: llm (SFT + GRPO, default) or fused (collaborative base + the LLM's "
            "hidden-state head; --sft-set takes `r2rec train hidden-head` keys; the GRPO "
            "stage trains its explainer, --grpo-set takes `r2rec train explainer` keys)."
        ),
    ] = None,
    feature_results: Annotated[
        Path | None,
        typer.Option(help="fused: baselines table (results/D/baselines.json) for the features."),
    ] = None,
    store: Annotated[
        str | None, typer.Option(help="Export from: memory (dataset + service journal) or neo4j.")
    ] = None,
    neo4j_uri: Annotated[str | None, typer.Option(envvar="NEO4J_URI", help="neo4j: Bolt URI.")] = (
        None
    ),
    neo4j_user: Annotated[str | None, typer.Option(envvar="NEO4J_USER", help="neo4j: user.")] = (
        None
    ),
    neo4j_password: Annotated[
        str | None, typer.Option(envvar="NEO4J_PASSWORD", help="neo4j: password.")
    ] = None,
    neo4j_database: Annotated[
        str | None, typer.Option(envvar="NEO4J_DATABASE", help="neo4j: database.")
    ] = None,
    stop_after: Annotated[
        str | None, typer.Option(help="Stop after this stage (export, data, sft, ...).")
    ] = None,
) -> None:
    """Batch job: export -> data -> SFT -> GRPO -> evaluate -> publish if better (rating:
    RecOne = cold start + GRPO, RecZero = GRPO from base, at the rating token; --set keys
    of `r2rec train rating-head`)."""
    from training.config import parse_sets
    from training.retrain import load_job, run_retrain, validate_job

    options: dict[str, Any] = {
        "dataset": dataset,
        "name": name,
        "limit_users": limit_users,
        "targets_per_user": targets_per_user,
        "sft_config": sft_config,
        "grpo_config": grpo_config,
        "grpo": grpo,
        "task": task,
        "init": init,
        "rating_recipe": rating_recipe,
        "rank_recipe": rank_recipe,
        "feature_results": feature_results,
        "store": store,
        "neo4j_uri": neo4j_uri,
        "neo4j_user": neo4j_user,
        "neo4j_password": neo4j_password,
        "neo4j_database": neo4j_database,
        "stop_after": stop_after,
    }
    config = load_job(config_file, options)
    if sft_set or grpo_set:  # key=value pairs go on top of the file's overrides
        config = replace(
            config,
            sft_overrides={**config.sft_overrides, **parse_sets(sft_set or [])},
            grpo_overrides={**config.grpo_overrides, **parse_sets(grpo_set or [])},
        )
    validate_job(config)
    _logging()
    try:
        record = run_retrain(config)
    except Exception as err:
        if isinstance(err, UserInputError):
            raise
        typer.echo(f"error: retrain {config.job} failed: {err}", err=True)
        raise SystemExit(1) from None
    keys: tuple[str, ...] = ("published", "reason", "run")
    keys += ("valid_hr1",) if config.task == "rank" else ()
    typer.echo(json.dumps({k: record.get(k) for k in keys}))
