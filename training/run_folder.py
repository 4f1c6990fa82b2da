"""The run folder: what every training run writes under ``$R2REC_HOME/runs/<name>/``.

    runs/<name>/
        config.yaml          the resolved configuration (`prepare_run_dir`)
        train.log            trainer log lines (loss, reward, lr per logging step)
        checkpoints/         trainer checkpoints (resume from the last one)
        trained.json         the trainer's summary numbers, once model/ is written
        adapter/             the LoRA adapter (LoRA runs)
        model/               the merged model: config.json + safetensors + tokenizer,
                             servable by vLLM and by make_backend("local", model_path=...)
        metrics.json         the task's evaluation per split (`Task.evaluate`): task rank:
                             protocol results (evaluation.runner.evaluate); task rating:
                             MAE/RMSE and the mean baselines (evaluation.rating)
        README.md            a short model card
        run.json             status: "complete" once everything above is written

``model/`` is written beside and renamed into place, so it is either whole or absent.
The order of the stages that fill it is `training.stages.run_stage`.

    folder = run_dir("sft-smollm2"); is_complete("sft-smollm2"); run_metrics("sft-smollm2")
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import yaml

from common.errors import UserInputError
from common.files import read_json, replace_dir, staging_dir, write_json_atomic, write_text_atomic
from common.paths import runs_root
from training.config import RunConfig, to_yaml

log = logging.getLogger("r2rec.training")


def run_dir(name: str) -> Path:
    return runs_root() / name


def is_complete(name: str) -> bool:
    status = read_json(run_dir(name) / "run.json")
    return bool(status and status.get("status") == "complete")


def start_model_path(config: RunConfig) -> Path:
    """The model a run starts from: another run's merged model, a folder, or the base."""
    from reasoning.backends.model_folders import default_base_dir, require_model

    if config.init_run:
        path = run_dir(config.init_run) / "model"
        if not (path / "config.json").is_file():
            raise UserInputError(f"run {config.init_run!r} has no merged model at {path}")
        return path
    return require_model(Path(config.base_model) if config.base_model else default_base_dir())


def prepare_run_dir(config: RunConfig) -> Path:
    folder = run_dir(config.name)
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / "config.yaml", to_yaml(config))
    return folder


def check_run_task(config: RunConfig) -> None:
    """Refuse to reuse a run folder made for the other task (its checkpoints and model)."""
    saved = run_dir(config.name) / "config.yaml"
    if not saved.is_file():
        return
    task = (yaml.safe_load(saved.read_text()) or {}).get("task", "rank")  # older runs ranked
    if task != config.task:
        raise UserInputError(
            f"run {config.name!r} is a task {task} run; choose another --name for task "
            f"{config.task}"
        )


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


def train_and_save(trainer: Any, tokenizer: Any, folder: Path, lora: bool) -> Any:
    """Run a TRL trainer, resuming from the folder's last checkpoint when there is one,
    then write its outputs (`save_outputs`); returns what ``trainer.train`` returned."""
    resume = last_checkpoint(folder)
    if resume:
        log.info("resuming from %s", resume)
    output = trainer.train(resume_from_checkpoint=resume)
    save_outputs(trainer.model, tokenizer, folder, lora)
    return output


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


def finish_run(
    folder: Path,
    config: RunConfig,
    kind: str,
    metrics: dict[str, Any],
    card: str,
    data: dict[str, Any],
    train_stats: dict[str, Any],
) -> None:
    """Write metrics.json, the model card and, last, the completion marker run.json."""
    write_json_atomic(folder / "metrics.json", metrics)
    write_text_atomic(folder / "README.md", card)
    write_json_atomic(
        folder / "run.json",
        {
            "status": "complete",
            "kind": kind,
            "task": config.task,
            "name": config.name,
            "finished_unix": time.time(),
            "train": train_stats,
            "data_sha256": data.get("sha256"),
        },
    )


def run_metrics(name: str) -> dict[str, Any]:
    metrics = read_json(run_dir(name) / "metrics.json")
    if not metrics:
        raise UserInputError(f"run {name!r} has no metrics.json (not finished?)")
    return dict(metrics)
