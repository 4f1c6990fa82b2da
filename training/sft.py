"""`r2rec train sft`: supervised fine-tuning on traces with TRL's SFTTrainer.

    r2rec train sft --data ml-100k-valid-t2-s0 --name sft-smollm2 --max-steps 200
    r2rec train sft --config training/configs/sft-smollm2.yaml --set lora_r=8

Each row of the dataset (`training.data`) is a conversational prompt (system, user, and
for masked variants an assistant message holding the given thoughts) and an assistant
completion. The prompt is rendered to text by the model's chat template exactly as the
in-process backend renders it at serving time (`TransformersBackend.render`: generation
prompt, or the open assistant message continued), the completion gets the end-of-turn
token, and the trainer gets prompt/completion strings: TRL then computes the loss on the
completion tokens only. (TRL's conversational prompt/completion path would close the
assistant prefix of a masked variant with an end-of-turn, which the served model never
sees, hence the rendering here.)

LoRA (peft, all linear layers) by default, full fine-tuning with ``lora=false``; CPU
(``use_cpu``, fp32) or CUDA. Re-running a finished run is a no-op; an interrupted one
resumes from its last checkpoint. Outputs: see `training.run_folder`; the stage itself
(skip, train, evaluate, write) is `training.stages.run_stage`. Also home to the trainer
helpers GRPO shares (`load_model`, `peft_config`, `trainer_common`, `run_callbacks`,
`tokens_seen`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from common.files import write_json_atomic
from training.config import SFTConfig
from training.device import resolve_device
from training.rows import TrainingRow
from training.run_folder import start_model_path, train_and_save
from training.stages import report_progress, run_stage

log = logging.getLogger("r2rec.training")


def load_model(path: Path, device: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    return cast(Any, model).to(device), tokenizer


def text_pairs(
    rows: Sequence[TrainingRow], model: Any, tokenizer: Any, label: str
) -> list[dict[str, str]]:
    """Prompt/completion strings rendered as the serving backend renders prompts."""
    from reasoning.backends.transformers_backend import LocalBackendConfig, TransformersBackend

    renderer = TransformersBackend.from_model(
        model, tokenizer, LocalBackendConfig(model_path=label)
    )
    eos = tokenizer.eos_token
    pairs = [
        {
            "prompt": renderer.render(row["prompt"]),
            "completion": row["completion"][0]["content"] + eos,
        }
        for row in rows
    ]
    tokenizer.padding_side = "right"
    return pairs


def peft_config(config: SFTConfig | Any) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


def trainer_common(config: Any, folder: Path, device: str) -> dict[str, Any]:
    """TrainingArguments shared by SFT and GRPO."""
    return {
        "output_dir": str(folder / "checkpoints"),
        "max_steps": config.max_steps,
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "learning_rate": config.learning_rate,
        "warmup_steps": config.warmup_ratio,
        "logging_steps": config.logging_steps,
        "save_steps": config.save_steps,
        "save_total_limit": 2,
        "seed": config.seed,
        "use_cpu": device == "cpu",
        "bf16": False,
        "fp16": False,
        "report_to": [] if config.report_to == "none" else [config.report_to],
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "gradient_checkpointing": config.gradient_checkpointing,
    }


def run_callbacks(time_limit_minutes: float | None) -> list[Any]:
    """Trainer callbacks: log lines to the run's train.log; report each step
    (`training.stages.report_progress`); stop at the time limit."""
    import time

    from transformers import TrainerCallback

    deadline = time.monotonic() + 60 * time_limit_minutes if time_limit_minutes else None

    class _RunCallback(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs:
                log.info("step %d %s", state.global_step, logs)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            report_progress(state.global_step, state.max_steps, "training")
            if deadline is not None and time.monotonic() > deadline:
                log.info("time limit reached at step %d: stopping", state.global_step)
                control.should_training_stop = True
                control.should_save = True

    return [_RunCallback()]


def tokens_seen(history: list[dict[str, Any]]) -> float | None:
    """The trainer's running count of input tokens (its last logged value)."""
    counts = [e["num_tokens"] for e in history if "num_tokens" in e]
    return float(counts[-1]) if counts else None


def train_sft(config: SFTConfig, folder: Path, rows: Sequence[TrainingRow]) -> dict[str, Any]:
    """Train and write adapter/ and model/; returns the trainer's summary numbers."""
    from datasets import Dataset as HFDataset
    from trl import SFTConfig as TRLSFTConfig
    from trl import SFTTrainer

    device = resolve_device(config.device)
    model_path = start_model_path(config)
    model, tokenizer = load_model(model_path, device)
    pairs = text_pairs(rows, model, tokenizer, str(model_path))
    args = TRLSFTConfig(
        **trainer_common(config, folder, device),
        max_length=config.max_length,
        completion_only_loss=True,
        packing=False,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=HFDataset.from_list(pairs),
        processing_class=tokenizer,
        peft_config=peft_config(config) if config.lora else None,
        callbacks=run_callbacks(config.time_limit_minutes),
    )
    output = train_and_save(trainer, tokenizer, folder, config.lora)
    stats = {
        "global_step": output.global_step,
        "train_loss": output.training_loss,
        **{k: v for k, v in output.metrics.items() if isinstance(v, int | float)},
        "num_tokens": tokens_seen(trainer.state.log_history),
        "start_model": str(model_path),
        "device": device,
        "rows": len(rows),
    }
    write_json_atomic(folder / "trained.json", stats)
    return stats


def run_sft(config: SFTConfig) -> Path:
    """Train (or resume), evaluate and write the run folder; a finished run is skipped."""
    return run_stage(config, "sft", train_sft)
