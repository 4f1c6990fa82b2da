"""`r2rec train grpo`: GRPO with the shared rule-based rewards (TRL GRPOTrainer).

    r2rec train grpo --init-run sft-smollm2 --name grpo-smollm2 --max-steps 50

Starts from an SFT run's merged model (``init_run``) or any model folder, and trains a
fresh LoRA adapter (or the full model) with group-relative policy optimisation:

- prompts: the full (variant 0) rows of a training dataset, rendered by TRL with the
  chat template's generation prompt, as at serving time;
- ``num_generations`` (>= 2) completions per prompt, generated in-process by
  transformers (``use_vllm=true`` hands generation to vLLM in colocate mode where it is
  installed: configuration only, not exercised here);
- rewards from `reasoning.rewards`: task rank: ``format_reward``, ``rank_reward`` and
  ``grounding_reward``, summed with ``reward_weights``; task rating (RecZero / RecOne,
  `training.rating.recipes`): ``rating_format_reward`` and ``rating_reward`` (which reads
  the rows' ``rating`` column), summed with ``rating_reward_weights``.

Outputs and resumption are those of every run (`training.runs`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

from common.errors import UserInputError
from common.files import write_json_atomic
from reasoning.rewards import (
    RewardFunc,
    format_reward,
    grounding_reward,
    rank_reward,
    rating_format_reward,
    rating_reward,
)
from training.config import GRPOConfig
from training.runs import (
    last_checkpoint,
    resolve_device,
    run_stage,
    save_outputs,
    start_model_path,
    tokens_seen,
)
from training.sft import load_model, peft_config, run_callbacks, trainer_common

log = logging.getLogger("r2rec.training")

REWARDS = (format_reward, rank_reward, grounding_reward)
COLUMNS = ("prompt", "candidates", "target", "evidence_titles")
RATING_REWARDS = (rating_format_reward, rating_reward)
RATING_COLUMNS = ("prompt", "rating")


def task_rewards(config: GRPOConfig) -> tuple[list[RewardFunc], list[float], tuple[str, ...]]:
    """(reward functions, their weights, the dataset columns they read) of the run's task."""
    if config.task == "rating":
        return list(RATING_REWARDS), list(config.rating_reward_weights), RATING_COLUMNS
    return list(REWARDS), list(config.reward_weights), COLUMNS


def prompt_rows(
    rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS
) -> list[dict[str, Any]]:
    """One row per distinct prompt (the full variant), with the columns the rewards read."""
    missing = sorted({c for c in columns for r in rows[:1] if c not in r})
    if missing:
        raise UserInputError(f"training rows lack the columns {missing} (data of another task?)")
    return [{c: r[c] for c in columns} for r in rows if r.get("variant", 0) == 0]


def train_grpo(config: GRPOConfig, folder: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    from datasets import Dataset as HFDataset
    from trl import GRPOConfig as TRLGRPOConfig
    from trl import GRPOTrainer

    device = resolve_device(config.device)
    if (config.batch_size * config.grad_accum) % config.num_generations:
        raise UserInputError(
            f"batch_size x grad_accum ({config.batch_size}x{config.grad_accum}) must be a "
            f"multiple of num_generations ({config.num_generations})"
        )
    reward_funcs, weights, columns = task_rewards(config)
    train_rows = prompt_rows(rows, columns)
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
        reward_weights=weights,
        **extra,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=cast(Any, reward_funcs),
        args=args,
        train_dataset=HFDataset.from_list(train_rows),
        processing_class=tokenizer,
        peft_config=peft_config(config) if config.lora else None,
        callbacks=run_callbacks(config.time_limit_minutes),
    )
    resume = last_checkpoint(folder)
    if resume:
        log.info("resuming from %s", resume)
    output = trainer.train(resume_from_checkpoint=resume)
    save_outputs(trainer.model, tokenizer, folder, config.lora)
    rewards = [e["reward"] for e in trainer.state.log_history if "reward" in e]
    stats = {"global_step": output.global_step, "train_loss": output.training_loss,
             **{k: v for k, v in output.metrics.items() if isinstance(v, int | float)},
             "mean_reward_first": rewards[0] if rewards else None,
             "mean_reward_last": rewards[-1] if rewards else None,
             "num_tokens": tokens_seen(trainer.state.log_history),
             "start_model": str(model_path), "device": device}  # fmt: skip
    write_json_atomic(folder / "trained.json", stats)
    return stats


def run_grpo(config: GRPOConfig) -> Path:
    """Train (or resume), evaluate and write the run folder; a finished run is skipped."""
    return run_stage(config, "grpo", train_grpo)
