"""What every training run writes and how it is scored: ``$R2REC_HOME/runs/<name>/``.

    runs/<name>/
        config.yaml          the resolved configuration
        train.log            trainer log lines (loss, reward, lr per logging step)
        checkpoints/         trainer checkpoints (resume from the last one)
        adapter/             the LoRA adapter (LoRA runs)
        model/               the merged model: config.json + safetensors + tokenizer,
                             servable by vLLM and by make_backend("local", model_path=...)
        metrics.json         protocol results per split (evaluation.runner.evaluate);
                             task rating: MAE/RMSE and the mean baselines per split
                             (training.rating.evaluate)
        README.md            a short model card
        run.json             status: "complete" once everything above is written

``model/`` is written beside and renamed into place, so it is either whole or absent.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from common.errors import UserInputError
from common.files import read_json, replace_dir, staging_dir, write_json_atomic, write_text_atomic
from common.paths import data_root, runs_root
from training.config import RunConfig, to_yaml

log = logging.getLogger("r2rec.training")


def run_dir(name: str) -> Path:
    return runs_root() / name


def is_complete(name: str) -> bool:
    status = read_json(run_dir(name) / "run.json")
    return bool(status and status.get("status") == "complete")


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserInputError("device cuda requested but torch sees no CUDA device")
    return device


def start_model_path(config: RunConfig) -> Path:
    """The model a run starts from: another run's merged model, a folder, or the base."""
    from reasoning.backends.model_folders import default_base_dir

    if config.init_run:
        path = run_dir(config.init_run) / "model"
        if not (path / "config.json").is_file():
            raise UserInputError(f"run {config.init_run!r} has no merged model at {path}")
        return path
    path = Path(config.base_model) if config.base_model else default_base_dir()
    if not (path / "config.json").is_file():
        raise UserInputError(
            f"no model at {path}: run `r2rec model prepare-base` or set base_model"
        )
    return path


def prepare_run_dir(config: RunConfig) -> Path:
    folder = run_dir(config.name)
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / "config.yaml", to_yaml(config))
    return folder


def attach_file_log(folder: Path) -> logging.Handler:
    handler = logging.FileHandler(folder / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def last_checkpoint(folder: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    checkpoints = folder / "checkpoints"
    return get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None


def save_outputs(trained: Any, tokenizer: Any, folder: Path, lora: bool) -> Path:
    """Write ``adapter/`` (LoRA) and the merged ``model/`` folder atomically."""
    import torch

    if lora:
        with staging_dir(folder / "adapter") as staging:
            trained.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            replace_dir(staging, folder / "adapter")
        merged = trained.merge_and_unload()
    else:
        merged = trained
    merged = merged.to("cpu").to(torch.float32)
    with staging_dir(folder / "model") as staging:
        merged.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        merged.generation_config.save_pretrained(staging)
        replace_dir(staging, folder / "model")
    return folder / "model"


def evaluate_rating_model(model_dir: Path, config: RunConfig) -> dict[str, Any]:
    """Task rating: MAE/RMSE of the merged model beside the mean baselines, per split."""
    from reasoning.backends import make_backend
    from recdata import load_dataset
    from training.rating.evaluate import evaluate_rating

    device = resolve_device(config.device)
    started = time.perf_counter()
    results = evaluate_rating(
        load_dataset(config.dataset), config.eval_splits, config.eval_limit,  # type: ignore[arg-type]
        lambda: make_backend("local", model_path=str(model_dir), device=device,
                             batch_size=config.eval_batch_size),
        model_name=config.name, max_tokens=config.rating_max_tokens,
        batch_size=config.eval_batch_size,
    )  # fmt: skip
    for split, result in results.items():
        log.info("%s %s: MAE %.4f RMSE %.4f", config.name, split, result["metrics"]["MAE"],
                 result["metrics"]["RMSE"])  # fmt: skip
    log.info("rating evaluation took %.1f s", time.perf_counter() - started)
    return results


def evaluate_model(model_dir: Path, config: RunConfig) -> dict[str, Any]:
    """Score the merged model on the protocol (valid/test) through the serving pipeline
    (task rank), or on the rating targets (task rating)."""
    from evaluation.llm_ranker import LLMRanker
    from evaluation.runner import evaluate
    from reasoning.backends import make_backend
    from recdata import load_dataset

    if config.task == "rating":
        return evaluate_rating_model(model_dir, config)
    dataset = load_dataset(config.dataset)
    device = resolve_device(config.device)
    results: dict[str, Any] = {}
    for split in config.eval_splits:
        ranker = LLMRanker(
            lambda: make_backend("local", model_path=str(model_dir), device=device,
                                 batch_size=config.eval_batch_size),
            explain=config.eval_explain,
            batch_size=config.eval_batch_size,
            name=config.name,
            show_progress=False,
        )  # fmt: skip
        started = time.perf_counter()
        result = evaluate(ranker, dataset, split, limit=config.eval_limit)  # type: ignore[arg-type]
        log.info("%s %s: HR@1 %.4f (%.1f s)", config.name, split, result.metrics["HR@1"],
                 time.perf_counter() - started)  # fmt: skip
        results[split] = {**asdict(result), "runtime_seconds": result.runtime_seconds}
    return results


def model_card(config: RunConfig, kind: str, metrics: dict[str, Any], data: dict[str, Any]) -> str:
    start = config.init_run or config.base_model or "SmolLM2-135M-Instruct"
    lines = [
        f"# {config.name}",
        "",
        f"R2Rec {kind} run. Started from `{start}`; "
        f"{'LoRA r=' + str(config.lora_r) if config.lora else 'full fine-tuning'}, "
        f"{config.max_steps} steps, batch {config.batch_size}x{config.grad_accum}, "
        f"lr {config.learning_rate}.",
        "",
        f"Training data: `{config.data}` (sha256 {str(data.get('sha256', ''))[:12]}, "
        f"{data.get('counts', {}).get('rows', '?')} rows).",
        "",
    ]
    if config.task == "rating":
        from training.rating.evaluate import markdown_table

        lines += [
            "Task: rating (1-5). MAE/RMSE of the expected rating on the protocol's "
            "leave-one-out targets, beside the mean baselines fitted on the training log.",
            "",
            markdown_table(metrics),
            "",
            f"Dataset {config.dataset}, first {config.eval_limit} targets per split.",
        ]
        return "\n".join(lines) + "\n"
    lines += [
        "| split | cases | HR@1 | HR@5 | NDCG@10 | ValidRatio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for split, result in metrics.items():
        m = result["metrics"]
        lines.append(
            f"| {split} | {int(m['cases'])} | {m['HR@1']:.4f} | {m['HR@5']:.4f} | "
            f"{m['NDCG@10']:.4f} | {m.get('ValidRatio', float('nan')):.4f} |"
        )
    mode = "explain" if config.eval_explain else "scoring (explain=false)"
    lines += ["", f"Protocol: {config.dataset}, {mode} mode, first {config.eval_limit} cases."]
    lines += ["", "Serve: `R2REC_MODEL_PATH=<this folder>/model r2rec serve`, or publish it with",
              f"`r2rec model publish {config.name}`."]  # fmt: skip
    return "\n".join(lines) + "\n"


def finish_run(
    folder: Path, config: RunConfig, kind: str, metrics: dict[str, Any], data: dict[str, Any],
    train_stats: dict[str, Any],
) -> None:  # fmt: skip
    write_json_atomic(folder / "metrics.json", metrics)
    write_text_atomic(folder / "README.md", model_card(config, kind, metrics, data))
    write_json_atomic(
        folder / "run.json",
        {"status": "complete", "kind": kind, "task": config.task, "name": config.name,
         "finished_unix": time.time(), "train": train_stats, "data_sha256": data.get("sha256")},
    )  # fmt: skip


def run_metrics(name: str) -> dict[str, Any]:
    metrics = read_json(run_dir(name) / "metrics.json")
    if not metrics:
        raise UserInputError(f"run {name!r} has no metrics.json (not finished?)")
    return dict(metrics)


def log_history_lines(history: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(entry) + "\n" for entry in history)


def run_stage(
    config: RunConfig,
    kind: str,
    train: Callable[[Any, Path, list[dict[str, Any]]], dict[str, Any]],
) -> Path:
    """Train (or resume) with ``train(config, folder, rows)``, evaluate, and write the run
    folder; a finished run is skipped. Shared by SFT and GRPO."""
    from training.data import dataset_task, read_examples

    folder = run_dir(config.name)
    check_run_task(config)
    if is_complete(config.name):
        log.info("run %s is complete: skipped", config.name)
        return folder
    data_folder = data_root() / config.data
    rows = read_examples(data_folder)
    data_task = dataset_task(read_json(data_folder / "manifest.json"))
    if data_task != config.task:
        raise UserInputError(
            f"dataset {config.data!r} was built for task {data_task}, the run is task "
            f"{config.task}: build it with `r2rec train data --task {config.task}`"
        )
    folder = prepare_run_dir(config)
    handler = attach_file_log(folder)
    try:
        stats = read_json(folder / "trained.json")
        if stats is None or not (folder / "model" / "config.json").is_file():
            stats = train(config, folder, rows)
        metrics = evaluate_model(folder / "model", config)
        finish_run(folder, config, kind, metrics, read_json(data_folder / "manifest.json"), stats)
    finally:
        log.removeHandler(handler)
        handler.close()
    return folder


def check_run_task(config: RunConfig) -> None:
    """Refuse to reuse a run folder made for the other task (its checkpoints and model)."""
    import yaml

    saved = run_dir(config.name) / "config.yaml"
    if not saved.is_file():
        return
    task = (yaml.safe_load(saved.read_text()) or {}).get("task", "rank")  # older runs ranked
    if task != config.task:
        raise UserInputError(
            f"run {config.name!r} is a task {task} run; choose another --name for task "
            f"{config.task}"
        )


def tokens_seen(history: list[dict[str, Any]]) -> float | None:
    """The trainer's running count of input tokens (its last logged value)."""
    counts = [e["num_tokens"] for e in history if "num_tokens" in e]
    return float(counts[-1]) if counts else None
