"""The rating task (RecZero / RecOne): predict a user's 1-5 rating; MAE / RMSE.

    r2rec train data --task rating --dataset ml-100k
    r2rec train grpo --task rating --init base --name reczero          # RecZero
    r2rec train grpo --task rating --init sft --name recone             # RecOne

- data: rated history -> target item -> true rating, with a template cold-start
  completion (`training.rating.data`); no sampling, so no seed and no teacher;
- GRPO rewards (`reasoning.rewards`): ``rating_format_reward`` and ``rating_reward``
  (which reads the rows' ``rating`` column), weighted by ``rating_reward_weights``;
- evaluation: MAE/RMSE of the merged model's expected rating on the protocol's
  leave-one-out targets beside the mean, bias and biased-MF baselines
  (`evaluation.rating.evaluate_rating`, inference by `reasoning.rater`);
- model card: the rating table (`evaluation.rating.markdown_table`);
- recipes (``--init base|sft``): RecZero and RecOne (`training.rating.recipes`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.errors import UserInputError
from reasoning.rewards import rating_format_reward, rating_reward
from training.tasks.base import DataRequest, GRPORewards, Task

if TYPE_CHECKING:
    from recdata.schema import Dataset
    from training.config import GRPOConfig, RunConfig, SFTConfig
    from training.datasets import BuiltData
    from training.rating.data import RatingDataConfig

log = logging.getLogger("r2rec.training")

DEFAULT_DATA = "ml-100k-rating-valid-t2"
REWARDS = (rating_format_reward, rating_reward)
COLUMNS = ("prompt", "rating")


class RatingTask(Task["RatingDataConfig"]):
    """RecZero / RecOne rating prediction."""

    name = "rating"
    default_data = DEFAULT_DATA

    def data_config(self, request: DataRequest) -> RatingDataConfig:
        from training.rating.data import RatingDataConfig

        if request.teacher_url or request.teacher_model or request.seed != 0:
            raise UserInputError("--teacher-url/--teacher-model/--seed are for --task rank")
        return RatingDataConfig(
            dataset=request.dataset,
            split=request.split,
            limit_users=request.limit_users,
            targets_per_user=request.targets_per_user,
        )

    def build_data(
        self,
        config: RatingDataConfig,
        dataset: Dataset,
        name: str | None = None,
        force: bool = False,
    ) -> BuiltData:
        from training.rating.data import build_rating_dataset

        return build_rating_dataset(config, dataset, name=name, force=force)

    def grpo_rewards(self, config: GRPOConfig) -> GRPORewards:
        return GRPORewards(list(REWARDS), list(config.rating_reward_weights), COLUMNS)

    def evaluate(self, model_dir: Path, config: RunConfig) -> dict[str, Any]:
        """MAE/RMSE of the merged model beside the rating baselines, per split."""
        from evaluation.rating import evaluate_rating
        from reasoning.backends import make_backend
        from recdata import load_dataset
        from training.device import resolve_device

        device = resolve_device(config.device)
        started = time.perf_counter()
        results = evaluate_rating(
            load_dataset(config.dataset),
            config.eval_splits,  # type: ignore[arg-type]  # checked by RunConfig
            config.eval_limit,
            lambda: make_backend(
                "local", model_path=str(model_dir), device=device, batch_size=config.eval_batch_size
            ),
            model_name=config.name,
            max_tokens=config.rating_max_tokens,
            batch_size=config.eval_batch_size,
        )
        for split, result in results.items():
            log.info(
                "%s %s: MAE %.4f RMSE %.4f",
                config.name,
                split,
                result["metrics"]["MAE"],
                result["metrics"]["RMSE"],
            )
        log.info("rating evaluation took %.1f s", time.perf_counter() - started)
        return results

    def card_section(self, config: RunConfig, metrics: dict[str, Any]) -> list[str]:
        from evaluation.rating import markdown_table

        return [
            "Task: rating (1-5). MAE/RMSE of the expected rating on the protocol's "
            "leave-one-out targets, beside the classical baselines fitted on the training log.",
            "",
            markdown_table(metrics),
            "",
            f"Dataset {config.dataset}, first {config.eval_limit} targets per split.",
        ]

    def recipe_configs(
        self,
        config: GRPOConfig,
        init: str,
        coldstart_steps: int = 30,
        coldstart_overrides: dict[str, Any] | None = None,
    ) -> tuple[SFTConfig | None, GRPOConfig]:
        """RecZero (``init="base"``) or RecOne (``init="sft"``)."""
        from training.rating.recipes import rating_recipe_configs

        return rating_recipe_configs(config, init, coldstart_steps, coldstart_overrides)
