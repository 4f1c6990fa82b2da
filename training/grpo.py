"""`r2rec train grpo`: GRPO with the shared rule-based rewards (TRL GRPOTrainer).

    r2rec train grpo --init-run sft-smollm2 --name grpo-smollm2 --max-steps 50

Starts from an SFT run's merged model (``init_run``) or any model folder, and trains a
fresh LoRA adapter (or the full model) with group-relative policy optimisation:

- prompts: the full (variant 0) rows of a training dataset, rendered by TRL with the
  chat template's generation prompt, as at serving time;
- ``num_generations`` (>= 2) completions per prompt, generated in-process by
  transformers (``use_vllm=true`` hands generation to vLLM in colocate mode where it is
  installed: configuration only, not exercised here);
- rewards from `reasoning.rewards`, chosen by the run's task (`Task.grpo_rewards`):
  task rank (`training.tasks.ranking`): ``format_reward``, ``rank_reward`` and
  ``grounding_reward``, summed with ``reward_weights``; task rating (RecZero / RecOne,
  `training.tasks.rating`): ``rating_format_reward`` and ``rating_reward`` (which reads
  the rows' ``rating`` column), summed with ``rating_reward_weights``.

Outputs and resumption are those of every run (`training.run_folder`,
`training.stages`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from common.errors import UserInputError
from common.files import write_json_atomic
from training.config import GRPOConfig
from training.device import resolve_device
from training.rows import TrainingRow
from training.run_folder import start_model_path, train_and_save
from training.sft import load_model, peft_config, run_callbacks, tokens_seen, trainer_common
from training.stages import run_stage
from training.tasks import get_task

log = logging.getLogger("r2rec.training")


def prompt_rows(rows: Sequence[TrainingRow], columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """One row per distinct prompt (the full variant), with the columns the rewards read
    (the TRL dataset's rows)."""
    found: list[Mapping[str, Any]] = list(rows)
    missing = sorted({c for c in columns for r in found[:1] if c not in r})
    if missing:
        raise UserInputError(f"training rows lack the columns {missing} (data of another task?)")
    return [{c: r[c] for c in columns} for r in found if r.get("variant", 0) == 0]


def train_grpo(config: GRPOConfig, folder: Path, rows: Sequence[TrainingRow]) -> dict[str, Any]:
    from datasets import Dataset as HFDataset
    from trl import GRPOConfig as TRLGRPOConfig
    from trl import GRPOTrainer

    device = resolve_device(config.device)
    if (config.batch_size * config.grad_accum) % config.num_generations:
        raise UserInputError(
            f"batch_size x grad_accum ({config.batch_size}x{config.grad_accum}) must be a "
            f"multiple of num_generations ({config.num_generations})"
        )
    task_rewards = get_task(config.task).grpo_rewards(config)
    train_rows = prompt_rows(rows, task_rewards.columns)
    model_path = start_model_path(config)
    model, tokenizer = load_model(model_path, device)
    extra: dict[str, Any] = (
        {"use_vllm": True, "vllm_mode": config.vllm_mode} if config.use_vllm else {}
    )
    args = TRLGRPOConfig(
        **trainer_common(config, folder, device),
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        beta=config.beta,
        reward_weights=list(task_rewards.weights),
        **extra,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=cast(Any, list(task_rewards.funcs)),
        args=args,
        train_dataset=HFDataset.from_list(train_rows),
        processing_class=tokenizer,
        peft_config=peft_config(config) if config.lora else None,
        callbacks=run_callbacks(config.time_limit_minutes),
    )
    output = train_and_save(trainer, tokenizer, folder, config.lora)
    history = trainer.state.log_history
    rewards = [e["reward"] for e in history if "reward" in e]
    stats = {
        "global_step": output.global_step,
        "train_loss": output.training_loss,
        **{k: v for k, v in output.metrics.items() if isinstance(v, int | float)},
        "mean_reward_first": rewards[0] if rewards else None,
        "mean_reward_last": rewards[-1] if rewards else None,
        "num_tokens": tokens_seen(history),
        **signal_stats(history),
        "start_model": str(model_path),
        "device": device,
    }
    write_json_atomic(folder / "trained.json", stats)
    return stats


def signal_stats(history: list[dict[str, Any]]) -> dict[str, float | None]:
    """Whether GRPO had anything to learn from, over the logged steps (TRL's metrics):
    the share of groups whose rewards differed (a non-zero advantage), the mean completion
    length and the share of completions cut at ``max_completion_length``.

    >>> signal_stats([{"frac_reward_zero_std": 0.75, "completions/mean_length": 90.0,
    ...                "completions/clipped_ratio": 0.5}, {"frac_reward_zero_std": 0.25}])
    {'groups_with_signal': 0.5, 'completion_mean_length': 90.0, 'completions_clipped': 0.5}
    """

    def mean(key: str) -> float | None:
        values = [float(e[key]) for e in history if key in e]
        return round(sum(values) / len(values), 4) if values else None

    zero = mean("frac_reward_zero_std")
    return {
        "groups_with_signal": None if zero is None else round(1.0 - zero, 4),
        "completion_mean_length": mean("completions/mean_length"),
        "completions_clipped": mean("completions/clipped_ratio"),
    }


def run_grpo(config: GRPOConfig) -> Path:
    """Train (or resume), evaluate and write the run folder; a finished run is skipped."""
    return run_stage(config, "grpo", train_grpo)
