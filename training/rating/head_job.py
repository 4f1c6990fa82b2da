"""The rating head inside `r2rec retrain --task rating`: RecOne and RecZero at the rating token.

    r2rec retrain --task rating --init sft     # RecOne: cross-entropy cold start, then GRPO
    r2rec retrain --task rating --init base    # RecZero: GRPO from the base model

The retrain job's ``sft`` and ``grpo`` stages each run `training.rating.head` on the
export stage's snapshot (``<dataset>-live`` when the store has new ratings):

- ``sft`` (RecOne only): the cold start, soft-label cross-entropy over "1".."5" after the
  grounded steps, into ``runs/<job>-head-ce``; not scored when GRPO follows;
- ``grpo``: GRPO on the sampled rating token with the seed's rewards, from that cold start
  (RecOne) or from a fresh adapter on the base model (RecZero), into
  ``runs/<job>-head-grpo``; it scores valid and test and chooses the blend on valid;
- ``evaluate`` records the last stage's test table; ``publish`` runs
  `training.rating.publish` (its gate: a lower valid MAE than the partner and the
  published rating model), after which /rate serves it.

The job's ``sft_config`` / ``grpo_config`` (YAML) and ``sft_overrides`` /
``grpo_overrides`` (``--sft-set`` / ``--grpo-set``) hold `RatingHeadConfig` keys of the
two stages, e.g. ``max_train_seconds=3600``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.errors import UserInputError
from common.files import read_json
from common.paths import runs_root
from training.config import load_config
from training.rating.head import RatingHeadConfig, run_rating_head

if TYPE_CHECKING:
    from training.retrain import RetrainConfig

OWNED = ("dataset", "out_dir", "objective", "start_from")  # the job sets these


def check_overrides(ce: dict[str, Any], grpo: dict[str, Any]) -> None:
    """Refuse stage settings the job sets itself (`OWNED`)."""
    for name, given in (("sft", ce), ("grpo", grpo)):
        owned = sorted(set(given) & set(OWNED))
        if owned:
            raise UserInputError(f"{name} settings of the rating head: {owned} are set by the job")


def stage_configs(
    job: str,
    dataset: str,
    init: str,
    grpo: bool,
    files: tuple[Path | None, Path | None] = (None, None),
    overrides: tuple[dict[str, Any], dict[str, Any]] = ({}, {}),
) -> tuple[RatingHeadConfig | None, RatingHeadConfig | None]:
    """(cold start, GRPO) of the job, each from its YAML file (``files``) and key=value
    ``overrides`` (strings are read as the field's type); None where the recipe has no
    such stage. The job sets `OWNED` itself.

    >>> ce, rl = stage_configs("j", "ml-100k", "base", True, overrides=({}, {"lr": "1e-4"}))
    >>> ce is None, rl.objective, rl.start_from, rl.lr
    (True, 'grpo', None, 0.0001)
    """
    check_overrides(*overrides)
    root = runs_root()
    ce = None
    if init == "sft":
        ce = load_config(
            RatingHeadConfig,
            files[0],
            {
                "score": not grpo,
                **overrides[0],
                "dataset": dataset,
                "objective": "ce",
                "out_dir": str(root / f"{job}-head-ce"),
            },
        )
    rl = None
    if grpo:
        rl = load_config(
            RatingHeadConfig,
            files[1],
            {
                **overrides[1],
                "dataset": dataset,
                "objective": "grpo",
                "out_dir": str(root / f"{job}-head-grpo"),
                "start_from": ce.out_dir if ce is not None else None,
            },
        )
    return ce, rl


def run_stage(config: RatingHeadConfig | None) -> dict[str, Any]:
    """One training stage: its folder and training figures (skipped: no config)."""
    if config is None:
        return {"skipped": True}
    summary = run_rating_head(config)
    return {"run": config.out_dir, "training": summary["training"]}


def final_figures(run: str) -> dict[str, Any]:
    """The evaluate stage's record: the last stage's valid choice and test table."""
    summary = read_json(Path(run) / "summary.json")
    if not summary or "test" not in summary:
        raise UserInputError(f"{run} was not scored (score=false): nothing to evaluate")
    keep = ("best_classical_on_valid", "blend_weight", "valid_MAE", "test", "scoring_seconds")
    return {"run": run, **{k: summary[k] for k in keep if k in summary}}


class HeadStages:
    """The retrain job's stages for the rating head (``dataset``: the export's snapshot,
    known once the export stage has run)."""

    def __init__(self, job: RetrainConfig, dataset: Callable[[], str]) -> None:
        self.job, self.dataset = job, dataset

    def settings(self) -> dict[str, RatingHeadConfig | None]:
        """The two stages' configs, keyed as the job's ``sft`` and ``grpo``."""
        job = self.job
        ce, rl = stage_configs(
            job.job,
            self.dataset(),
            job.init,
            job.grpo,
            (job.sft_config, job.grpo_config),
            (job.sft_overrides, job.grpo_overrides),
        )
        return {"sft": ce, "grpo": rl}

    def last(self) -> str:
        ce, rl = self.settings().values()
        return str((rl or ce).out_dir)  # type: ignore[union-attr]  # one of them is set

    def work(self, export: Callable[[], dict[str, Any]]) -> dict[str, Callable[[], dict[str, Any]]]:
        from training.rating.publish import publish_rating

        return {
            "export": export,
            "data": lambda: {"skipped": True, "reason": "the rating head reads the snapshot"},
            "sft": lambda: run_stage(self.settings()["sft"]),
            "grpo": lambda: run_stage(self.settings()["grpo"]),
            "evaluate": lambda: final_figures(self.last()),
            "publish": lambda: publish_rating(Path(self.last()), force=self.job.publish_force),
        }
