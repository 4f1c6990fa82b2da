"""The `Task` interface: everything that differs between ranking and rating training.

    from training.tasks import get_task
    task = get_task(config.task)                 # "rank" or "rating"
    built = task.build_data(task.data_config(DataRequest(limit_users=4)), dataset)
    rewards = task.grpo_rewards(grpo_config)     # functions, weights, columns read
    metrics = task.evaluate(run_folder / "model", config)
    lines = task.card_section(config, metrics)

A task is a stateless object registered by name in `training.tasks` (``--task rank|rating``
on the command line, the ``task`` field of configs, manifests and run folders). The shared
machinery (`training.stages`, `training.sft`, `training.grpo`, `r2rec train data`) calls
these methods and never tests the task's name. Implementations: `training.tasks.ranking`,
`training.tasks.rating`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from common.errors import UserInputError

if TYPE_CHECKING:
    from reasoning.rewards import RewardFunc
    from recdata.schema import Dataset
    from training.config import GRPOConfig, RunConfig, SFTConfig
    from training.datasets import BuiltData

D = TypeVar("D")  # the task's data config (training.data.DataConfig, RatingDataConfig)


@dataclass(frozen=True)
class DataRequest:
    """The options of ``r2rec train data``; each task turns them into its data config
    (and refuses the ones it has no use for)."""

    dataset: str = "ml-100k"
    split: str = "valid"
    limit_users: int | None = None
    targets_per_user: int = 2
    seed: int = 0
    masked: bool = True
    teacher_url: str | None = None
    teacher_model: str | None = None


@dataclass(frozen=True)
class GRPORewards:
    """A task's GRPO rewards: the functions, their weights (summed by TRL) and the dataset
    columns they read (every other column is dropped from the prompt rows)."""

    funcs: Sequence[RewardFunc]
    weights: Sequence[float]
    columns: tuple[str, ...]


class Task(ABC, Generic[D]):
    """One training task (see the module docstring)."""

    name: str  # the registry key: "rank", "rating"
    default_data: str  # the dataset folder a run of this task reads by default

    @abstractmethod
    def data_config(self, request: DataRequest) -> D:
        """The task's data config from the ``r2rec train data`` options."""

    @abstractmethod
    def build_data(
        self, config: D, dataset: Dataset, name: str | None = None, force: bool = False
    ) -> BuiltData:
        """Build and write the training rows (`training.datasets.write_versioned`)."""

    @abstractmethod
    def grpo_rewards(self, config: GRPOConfig) -> GRPORewards:
        """The reward functions, weights and columns of a GRPO run of this task."""

    @abstractmethod
    def evaluate(self, model_dir: Path, config: RunConfig) -> dict[str, Any]:
        """Score a trained model folder on the protocol: ``metrics.json``, per split."""

    @abstractmethod
    def card_section(self, config: RunConfig, metrics: dict[str, Any]) -> list[str]:
        """The model card's lines after the shared header: the metrics and how to use it."""

    def recipe_configs(
        self,
        config: GRPOConfig,
        init: str,
        coldstart_steps: int = 30,
        coldstart_overrides: dict[str, Any] | None = None,
    ) -> tuple[SFTConfig | None, GRPOConfig]:
        """(cold-start SFT config or None, GRPO config) of ``--init INIT``; a task without
        recipes refuses."""
        raise UserInputError(f"--init is not defined for task {self.name}")
