"""Training run configuration: one dataclass per stage, loaded from YAML plus overrides.

    config = load_config(SFTConfig, Path("training/configs/sft-smollm2.yaml"),
                         {"max_steps": "20", "name": "try"})

A YAML file holds a mapping of field names; overrides (``--set key=value`` on the CLI, or
the dedicated options) win over the file, the file over the defaults. Unknown keys and
values of the wrong type are refused with a message naming the key. `describe` prints
every field with its help text (``r2rec train sft --show-config``). The ``task`` field
names a task of `training.tasks` (``rank`` or ``rating``); each task has its own default
``data`` folder.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import yaml

from common.errors import UserInputError
from training.tasks import get_task
from training.tasks.ranking import DEFAULT_DATA as RANK_DEFAULT_DATA
from training.tasks.rating import DEFAULT_DATA as RATING_DEFAULT_DATA

C = TypeVar("C")


@dataclass(frozen=True)
class RunConfig:
    """What every training run shares: data, model, run folder, device, evaluation."""

    name: str = field(default="r2rec-sft", metadata={"help": "Run folder: $R2REC_HOME/runs/NAME."})
    task: str = field(
        default="rank",
        metadata={
            "help": "rank: the 20-candidate ranker (HR/NDCG); rating: RecZero/RecOne "
            "1-5 rating prediction (MAE/RMSE beside the mean baselines)."
        },
    )
    data: str = field(
        default=RANK_DEFAULT_DATA,
        metadata={
            "help": "Dataset folder under $R2REC_HOME/data (built for the same task; "
            f"task rating turns the default into {RATING_DEFAULT_DATA})."
        },
    )
    dataset: str = field(default="ml-100k", metadata={"help": "Dataset scored after training."})
    base_model: str | None = field(
        default=None,
        metadata={"help": "Model folder to start from; None = the prepared SmolLM2 base."},
    )
    init_run: str | None = field(
        default=None, metadata={"help": "Start from this run's merged model (overrides base)."}
    )
    lora: bool = field(default=True, metadata={"help": "Train a LoRA adapter (else full FT)."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    max_steps: int = field(default=100, metadata={"help": "Optimiser steps."})
    batch_size: int = field(default=4, metadata={"help": "Examples per device step."})
    grad_accum: int = field(default=1, metadata={"help": "Gradient accumulation steps."})
    learning_rate: float = field(default=2e-4, metadata={"help": "Peak learning rate."})
    warmup_ratio: float = field(default=0.05, metadata={"help": "Warm-up share of the steps."})
    max_length: int = field(default=1536, metadata={"help": "Longest training sequence, tokens."})
    time_limit_minutes: float | None = field(
        default=None, metadata={"help": "Stop training (and save) after this many minutes."}
    )
    gradient_checkpointing: bool = field(
        default=True,
        metadata={"help": "Recompute activations in the backward pass: less memory, ~30% slower."},
    )
    save_steps: int = field(default=25, metadata={"help": "Checkpoint every N steps."})
    logging_steps: int = field(default=5, metadata={"help": "Log every N steps."})
    seed: int = field(default=0, metadata={"help": "Training seed."})
    device: str = field(default="auto", metadata={"help": "cpu, cuda or auto."})
    eval_splits: tuple[str, ...] = field(
        default=("valid", "test"), metadata={"help": "Protocol splits scored after training."}
    )
    eval_limit: int | None = field(
        default=200, metadata={"help": "Score only the first N cases per split; None = all."}
    )
    eval_explain: bool = field(
        default=False, metadata={"help": "Evaluate in explain mode (slow) instead of scoring."}
    )
    eval_batch_size: int = field(default=8, metadata={"help": "Cases per evaluation batch."})
    rating_max_tokens: int = field(
        default=192,
        metadata={"help": "Task rating: reasoning tokens written before <rate> is forced."},
    )
    report_to: str = field(
        default="none", metadata={"help": "Trainer loggers: none, mlflow, trackio, tensorboard."}
    )

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise UserInputError(f"bad run name {self.name!r}")
        task = get_task(self.task)  # refuses an unknown name, listing the known ones
        if self.data == RANK_DEFAULT_DATA:  # the field's default: each task has its own
            object.__setattr__(self, "data", task.default_data)
        positive = (
            "max_steps",
            "batch_size",
            "grad_accum",
            "max_length",
            "save_steps",
            "eval_batch_size",
            "rating_max_tokens",
        )
        for key in positive:
            if getattr(self, key) < 1:
                raise UserInputError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise UserInputError(f"device must be cpu, cuda or auto, got {self.device!r}")
        bad = [s for s in self.eval_splits if s not in ("valid", "test")]
        if bad:
            raise UserInputError(f"eval_splits must be valid/test, got {bad}")


@dataclass(frozen=True)
class SFTConfig(RunConfig):
    """Supervised fine-tuning on traces or rating completions (loss on the completion only)."""


@dataclass(frozen=True)
class GRPOConfig(RunConfig):
    """GRPO with the shared rule-based rewards."""

    name: str = field(default="r2rec-grpo", metadata={"help": "Run folder name."})
    learning_rate: float = field(default=1e-5, metadata={"help": "Peak learning rate."})
    max_steps: int = field(default=50, metadata={"help": "Optimiser steps."})
    num_generations: int = field(default=4, metadata={"help": "Completions per prompt (>= 2)."})
    max_completion_length: int = field(default=160, metadata={"help": "Tokens per completion."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature."})
    beta: float = field(default=0.0, metadata={"help": "KL coefficient (0 = no reference)."})
    reward_weights: tuple[float, ...] = field(
        default=(0.5, 1.0, 0.25),
        metadata={"help": "Task rank: weights of format_reward, rank_reward, grounding_reward."},
    )
    rating_reward_weights: tuple[float, ...] = field(
        default=(0.25, 1.0),
        metadata={"help": "Task rating: weights of rating_format_reward, rating_reward."},
    )
    use_vllm: bool = field(default=False, metadata={"help": "Generate with vLLM (colocate)."})
    vllm_mode: str = field(default="colocate", metadata={"help": "vLLM mode: colocate/server."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_generations < 2:
            raise UserInputError(f"num_generations must be >= 2, got {self.num_generations}")
        if len(self.reward_weights) != 3:
            raise UserInputError(f"reward_weights needs 3 values, got {self.reward_weights}")
        if len(self.rating_reward_weights) != 2:
            raise UserInputError(
                f"rating_reward_weights needs 2 values, got {self.rating_reward_weights}"
            )


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """``value`` (from YAML or a "key=value" string) as the field's type."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        inner = next(a for a in args if a is not type(None))
        return _coerce(name, inner, value)
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(_coerce(name, args[0], v) for v in items if str(v).strip() != "")
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "1", "yes"):
                return True
            if str(value).lower() in ("false", "0", "no"):
                return False
            raise ValueError(value)
        if hint in (int, float, str):
            return hint(value)
        if hint is Path:
            return Path(value)
        if hint is dict or typing.get_origin(hint) is dict:
            if not isinstance(value, dict):
                raise ValueError(value)
            return {str(k): v for k, v in value.items()}
    except (TypeError, ValueError):
        raise UserInputError(f"config key {name!r}: cannot read {value!r} as {hint}") from None
    return value


def load_config(cls: type[C], path: Path | None, overrides: dict[str, Any]) -> C:
    """Defaults <- YAML file <- overrides; every key checked against the dataclass."""
    values: dict[str, Any] = {}
    if path is not None:
        if not path.is_file():
            raise UserInputError(f"{path}: config file not found")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise UserInputError(f"{path}: a config file holds a mapping of field names")
        values.update(loaded)
    values.update({k: v for k, v in overrides.items() if v is not None})
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserInputError(f"unknown config keys {unknown}; known: {sorted(known)}")
    return cls(**{k: _coerce(k, hints[k], v) for k, v in values.items()})


def parse_sets(pairs: list[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a pair without "=" is refused."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserInputError(f"--set takes key=value, got {pair!r}")
        out[key.strip()] = value
    return out


def to_yaml(config: Any) -> str:
    values = {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
    }
    return yaml.safe_dump(values, sort_keys=True)


def describe(cls: type) -> str:
    """Every field with its default and help text, one per line."""
    lines = []
    for f in fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else "(required)"
        lines.append(f"{f.name} = {default!r}: {f.metadata.get('help', '')}")
    return "\n".join(lines)
