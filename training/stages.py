"""One training stage end to end: train (or resume), evaluate, write the run folder.

    folder = run_stage(config, "sft", train_sft)     # what run_sft / run_grpo do

`run_stage` is shared by SFT (`training.sft`) and GRPO (`training.grpo`):

1. refuse a run folder made for the other task, and skip a complete run;
2. read the training rows (`training.datasets.read_examples`) and refuse a dataset built for
   another task than the run's;
3. write ``config.yaml`` and log to ``train.log`` (`training.run_folder`);
4. ``train(config, folder, rows)`` unless ``trained.json`` and ``model/`` are already
   there (an interrupted run resumes from its last checkpoint inside ``train``);
5. score ``model/`` with the task's evaluation (`Task.evaluate`), then write
   ``metrics.json``, the model card (`model_card`: a shared header, then the task's
   `Task.card_section`) and the completion marker ``run.json``.

The folder's layout is `training.run_folder`; the task-specific parts are
`training.tasks`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common.errors import UserInputError
from common.files import read_json
from common.paths import data_root
from training.config import RunConfig
from training.rows import TrainingRow
from training.run_folder import (
    attach_file_log,
    check_run_task,
    finish_run,
    is_complete,
    prepare_run_dir,
    run_dir,
)
from training.tasks import Task, get_task

log = logging.getLogger("r2rec.training")

TrainFunc = Callable[[Any, Path, Sequence[TrainingRow]], dict[str, Any]]
# (optimiser steps done, steps planned, phase: "training" or "evaluating")
ProgressHook = Callable[[int | None, int | None, str], None]
_progress_hooks: list[ProgressHook] = []


@contextmanager
def reporting_progress(hook: ProgressHook) -> Iterator[None]:
    """Call ``hook(step, max_steps, phase)`` after every optimiser step of the SFT and GRPO
    trainers started inside the block, and when a stage starts evaluating (the retrain
    job's progress file)."""
    _progress_hooks.append(hook)
    try:
        yield
    finally:
        _progress_hooks.remove(hook)


def report_progress(step: int | None, steps: int | None, phase: str) -> None:
    for hook in _progress_hooks:
        hook(step, steps, phase)


def model_card(
    config: RunConfig, kind: str, metrics: dict[str, Any], data: dict[str, Any], task: Task[Any]
) -> str:
    """The run's README.md: how it was trained and on what, then the task's section."""
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
        *task.card_section(config, metrics),
    ]
    return "\n".join(lines) + "\n"


def run_stage(config: RunConfig, kind: str, train: TrainFunc) -> Path:
    """Train (or resume) with ``train(config, folder, rows)``, evaluate, and write the run
    folder; a finished run is skipped. Shared by SFT and GRPO."""
    from training.datasets import dataset_task, read_examples

    task = get_task(config.task)
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
        report_progress(stats.get("global_step"), config.max_steps, "evaluating")
        metrics = task.evaluate(folder / "model", config)
        data = read_json(data_folder / "manifest.json")
        card = model_card(config, kind, metrics, data, task)
        finish_run(folder, config, kind, metrics, card, data, stats)
    finally:
        log.removeHandler(handler)
        handler.close()
    return folder
