"""`r2rec bench train`: SFT and GRPO throughput of a model on this machine (CPU by default).

    r2rec bench train [--model DIR] [--sft-steps 3] [--grpo-steps 2] [--batch-size 2]

Builds a small training dataset (the first few ML-100K users), runs a few SFT steps
(LoRA, the real prompt lengths) and a few GRPO steps (``num_generations`` completions
per prompt, in-process generation) in a scratch run folder, and prints examples/s,
tokens/s and seconds per step as reported by the trainers (the first step, with its
warm-up, included). Default model: the prepared SmolLM2-135M-Instruct.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer


def _figures(kind: str, stats: dict[str, Any], examples_per_step: int) -> dict[str, Any]:
    steps = max(1, int(stats["global_step"]))
    seconds = float(stats["train_runtime"])
    tokens = stats.get("num_tokens") or 0.0
    return {
        "stage": kind,
        "steps": steps,
        "examples_per_step": examples_per_step,
        "s_per_step": round(seconds / steps, 2),
        "examples_per_s": round(steps * examples_per_step / seconds, 3),
        "tokens_per_s": round(float(tokens) / seconds, 1),
    }


def bench_train(
    model: Annotated[Path | None, typer.Option(help="Model folder (default: SmolLM2).")] = None,
    sft_steps: Annotated[int, typer.Option(help="SFT steps timed.")] = 3,
    grpo_steps: Annotated[int, typer.Option(help="GRPO steps timed.")] = 2,
    batch_size: Annotated[int, typer.Option(help="Examples per SFT step.")] = 2,
    num_generations: Annotated[int, typer.Option(help="GRPO completions per prompt.")] = 2,
    completion_tokens: Annotated[int, typer.Option(help="GRPO completion length.")] = 64,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "cpu",
    max_length: Annotated[int, typer.Option(help="Longest SFT sequence, tokens.")] = 1536,
) -> None:
    """Print SFT and GRPO throughput (examples/s, tokens/s, s/step)."""
    from reasoning.backends.model_folders import default_base_dir
    from recdata import load_dataset
    from training.config import GRPOConfig, SFTConfig
    from training.data import DataConfig, build_examples
    from training.grpo import train_grpo
    from training.sft import train_sft

    base = str(model or default_base_dir())
    rows = list(build_examples(DataConfig(limit_users=4), load_dataset("ml-100k")))
    scratch = Path(tempfile.mkdtemp(prefix="r2rec-bench-train-"))
    common: dict[str, Any] = {
        "base_model": base,
        "device": device,
        "save_steps": 10_000,
        "logging_steps": 1,
        "max_length": max_length,
    }
    try:
        sft = SFTConfig(name="bench-sft", max_steps=sft_steps, batch_size=batch_size, **common)
        sft_stats = train_sft(sft, scratch / "sft", rows)
        grpo = GRPOConfig(
            name="bench-grpo",
            max_steps=grpo_steps,
            batch_size=num_generations,
            num_generations=num_generations,
            max_completion_length=completion_tokens,
            **common,
        )
        grpo_stats = train_grpo(grpo, scratch / "grpo", rows)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    figures = [_figures("sft", sft_stats, batch_size), _figures("grpo", grpo_stats, 1)]
    typer.echo(f"model {base}, device {device}")
    typer.echo("| stage | steps | examples/step | s/step | examples/s | tokens/s |")
    typer.echo("|---|---:|---:|---:|---:|---:|")
    for f in figures:
        typer.echo(
            f"| {f['stage']} | {f['steps']} | {f['examples_per_step']} | {f['s_per_step']} "
            f"| {f['examples_per_s']} | {f['tokens_per_s']} |"
        )
    typer.echo(json.dumps(figures))
