"""The ranking task (R2Rec): rank 20 candidates; HR@k / NDCG@k on the protocol.

    r2rec train data --dataset ml-100k              # task rank is the default
    r2rec train sft --name sft-smollm2
    r2rec train grpo --init-run sft-smollm2 --name grpo-smollm2

- data: graph-grounded traces and their masked variants (`training.data.build_dataset`);
- GRPO rewards (`reasoning.rewards`): ``format_reward``, ``rank_reward`` and
  ``grounding_reward``, weighted by the config's ``reward_weights``; they read the rows'
  ``candidates``, ``target`` and ``evidence_titles`` columns;
- evaluation: the merged model behind the serving pipeline (`evaluation.llm_ranker`) on
  the protocol's cases (`evaluation.runner.evaluate`), per split in ``eval_splits``;
- model card: HR@1, HR@5, NDCG@10 and ValidRatio per split, and how to serve or publish.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.errors import UserInputError
from reasoning.rewards import format_reward, grounding_reward, rank_reward
from training.tasks.base import DataRequest, GRPORewards, Task

if TYPE_CHECKING:
    from recdata.schema import Dataset
    from training.config import GRPOConfig, RunConfig, SFTConfig
    from training.data import DataConfig
    from training.datasets import BuiltData

log = logging.getLogger("r2rec.training")

DEFAULT_DATA = "ml-100k-valid-t2-s0"
REWARDS = (format_reward, rank_reward, grounding_reward)
COLUMNS = ("prompt", "candidates", "target", "evidence_titles")


class RankingTask(Task["DataConfig"]):
    """R2Rec's 20-candidate ranker."""

    name = "rank"
    default_data = DEFAULT_DATA

    def data_config(self, request: DataRequest) -> DataConfig:
        from training.data import DataConfig

        return DataConfig(
            dataset=request.dataset,
            split=request.split,
            limit_users=request.limit_users,
            targets_per_user=request.targets_per_user,
            seed=request.seed,
            masked=request.masked,
            teacher_url=request.teacher_url,
            teacher_model=request.teacher_model,
        )

    def build_data(
        self, config: DataConfig, dataset: Dataset, name: str | None = None, force: bool = False
    ) -> BuiltData:
        from training.data import build_dataset

        return build_dataset(config, dataset, name=name, force=force)

    def grpo_rewards(self, config: GRPOConfig) -> GRPORewards:
        return GRPORewards(list(REWARDS), list(config.reward_weights), COLUMNS)

    def evaluate(self, model_dir: Path, config: RunConfig) -> dict[str, Any]:
        """Score the merged model on the protocol through the serving pipeline."""
        from evaluation.llm_ranker import LLMRanker
        from evaluation.runner import evaluate
        from reasoning.backends import make_backend
        from reasoning.recommender import RecommenderConfig
        from recdata import load_dataset
        from training.device import resolve_device

        dataset = load_dataset(config.dataset)
        device = resolve_device(config.device)
        results: dict[str, Any] = {}
        for split in config.eval_splits:
            ranker = LLMRanker(
                lambda: make_backend(
                    "local",
                    model_path=str(model_dir),
                    device=device,
                    batch_size=config.eval_batch_size,
                ),
                explain=config.eval_explain,
                config=RecommenderConfig(thoughts="model"),  # a trained trace's own thoughts
                batch_size=config.eval_batch_size,
                name=config.name,
                show_progress=False,
            )
            started = time.perf_counter()
            result = evaluate(ranker, dataset, split, limit=config.eval_limit)  # type: ignore[arg-type]
            log.info(
                "%s %s: HR@1 %.4f (%.1f s)",
                config.name,
                split,
                result.metrics["HR@1"],
                time.perf_counter() - started,
            )
            results[split] = {**asdict(result), "runtime_seconds": result.runtime_seconds}
        return results

    def card_section(self, config: RunConfig, metrics: dict[str, Any]) -> list[str]:
        lines = [
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
        lines += [
            "",
            "Serve: `R2REC_MODEL_PATH=<this folder>/model r2rec serve`, or publish it with",
            f"`r2rec model publish {config.name}`.",
        ]
        return lines

    def recipe_configs(
        self,
        config: GRPOConfig,
        init: str,
        coldstart_steps: int = 30,
        coldstart_overrides: dict[str, Any] | None = None,
    ) -> tuple[SFTConfig | None, GRPOConfig]:
        raise UserInputError("--init base|sft is for --task rating (ranking: use --init-run)")
