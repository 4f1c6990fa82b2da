"""`r2rec retrain`: the batch retraining job, runnable from cron or a compose profile.

    r2rec retrain --dataset ml-100k [--name nightly] [--sft-config FILE] [--grpo-config FILE]

Stages, in order; each writes a marker ``runs/<job>/stages/<stage>.json`` when it has
finished, and a finished stage is skipped when the job runs again, so the job is
idempotent and resumes after a crash at the first unfinished stage (a training stage
itself resumes from its last checkpoint):

1. ``export``: snapshot the current interaction data (a built-in or imported dataset,
   what the embedded graph store serves) to ``export/`` with its fingerprint;
2. ``data``: build the training dataset from the snapshot (`training.data`);
3. ``sft``: supervised fine-tuning (`training.sft`), evaluated on the protocol;
4. ``grpo``: GRPO from the SFT model (`training.grpo`), unless ``grpo=false``;
5. ``evaluate``: record the final run's validation and test metrics;
6. ``publish``: promote the final run if its validation HR@1 beats the published model.

The log goes to stderr and ``runs/<job>/retrain.log``. Exit codes (CLI): 0 = done
(published or not: the record says which), 1 = a stage failed (see the log), 2 = bad
input.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from common.errors import UserInputError
from common.files import read_json, write_json_atomic
from common.paths import runs_root
from recdata.schema import Dataset
from training.config import GRPOConfig, SFTConfig, load_config
from training.data import DataConfig, build_dataset

log = logging.getLogger("r2rec.retrain")
STAGES = ("export", "data", "sft", "grpo", "evaluate", "publish")


@dataclass(frozen=True)
class RetrainConfig:
    """The job: which data, how much of it, and the SFT/GRPO configs."""

    dataset: str = field(default="ml-100k", metadata={"help": "Dataset (built-in or imported)."})
    name: str | None = field(default=None, metadata={"help": "Job name; default retrain-DATASET."})
    limit_users: int | None = field(default=None, metadata={"help": "Use only N users (smoke)."})
    targets_per_user: int = field(default=2, metadata={"help": "Training targets per user."})
    sft_config: Path | None = field(default=None, metadata={"help": "SFT YAML config."})
    grpo_config: Path | None = field(default=None, metadata={"help": "GRPO YAML config."})
    sft_overrides: dict[str, Any] = field(default_factory=dict, metadata={"help": "SFT keys."})
    grpo_overrides: dict[str, Any] = field(default_factory=dict, metadata={"help": "GRPO keys."})
    grpo: bool = field(default=True, metadata={"help": "Run the GRPO stage."})

    @property
    def job(self) -> str:
        return self.name or f"retrain-{self.dataset}"


def job_dir(job: str) -> Path:
    return runs_root() / job


def stage_done(job: str, stage: str) -> dict[str, Any] | None:
    record = read_json(job_dir(job) / "stages" / f"{stage}.json")
    return dict(record) if record else None


def _mark(job: str, stage: str, result: dict[str, Any], started: float) -> None:
    write_json_atomic(
        job_dir(job) / "stages" / f"{stage}.json",
        {
            "stage": stage,
            "seconds": round(time.perf_counter() - started, 2),
            "finished_unix": time.time(),
            **result,
        },
    )


def _export(config: RetrainConfig, folder: Path) -> dict[str, Any]:
    from evaluation.protocol import dataset_fingerprint
    from recdata import load_dataset

    data = load_dataset(config.dataset)
    out = folder / "export"
    out.mkdir(parents=True, exist_ok=True)
    data.interactions.to_parquet(out / "interactions.parquet", index=False)
    data.items.to_parquet(out / "items.parquet", index=False)
    return {"fingerprint": dataset_fingerprint(data), "interactions": len(data.interactions)}


def _snapshot(config: RetrainConfig, folder: Path) -> Dataset:
    out = folder / "export"
    return Dataset.from_frames(
        config.dataset,
        pd.read_parquet(out / "interactions.parquet"),
        pd.read_parquet(out / "items.parquet"),
    )


def _configs(config: RetrainConfig, data_name: str) -> tuple[SFTConfig, GRPOConfig]:
    job = config.job
    sft = load_config(
        SFTConfig,
        config.sft_config,
        {
            "name": f"{job}-sft",
            "data": data_name,
            "dataset": config.dataset,
            **config.sft_overrides,
        },
    )
    grpo = load_config(
        GRPOConfig,
        config.grpo_config,
        {
            "name": f"{job}-grpo",
            "data": data_name,
            "dataset": config.dataset,
            "init_run": sft.name,
            **config.grpo_overrides,
        },
    )
    return sft, grpo


def run_retrain(config: RetrainConfig) -> dict[str, Any]:
    """Run every unfinished stage; returns the publish stage's record."""
    from training.grpo import run_grpo
    from training.publish import decision_json, publish
    from training.run_folder import run_metrics
    from training.sft import run_sft

    job = config.job
    folder = job_dir(job)
    folder.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(folder / "retrain.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    data_name = f"{job}-data"
    sft, grpo = _configs(config, data_name)
    write_json_atomic(
        folder / "job.json", {**asdict(config), "sft": asdict(sft), "grpo": asdict(grpo)}
    )
    final = grpo.name if config.grpo else sft.name
    work = {
        "export": lambda: _export(config, folder),
        "data": lambda: _data(config, folder, data_name),
        "sft": lambda: {"run": str(run_sft(sft))},
        "grpo": lambda: {"run": str(run_grpo(grpo))} if config.grpo else {"skipped": True},
        "evaluate": lambda: {"run": final, "metrics": run_metrics(final)},
        "publish": lambda: decision_json(publish(final)),
    }
    try:
        for stage in STAGES:
            if stage_done(job, stage):
                log.info("%s: %s already done, skipped", job, stage)
                continue
            log.info("%s: %s ...", job, stage)
            started = time.perf_counter()
            result = work[stage]()
            _mark(job, stage, result, started)
            log.info("%s: %s done in %.1f s", job, stage, time.perf_counter() - started)
        record = stage_done(job, "publish") or {}
        log.info(
            "%s: finished; published=%s (%s)", job, record.get("published"), record.get("reason")
        )
        return record
    except Exception:
        log.exception("%s: stage failed; run the job again to resume", job)
        raise
    finally:
        log.removeHandler(handler)
        handler.close()


def _data(config: RetrainConfig, folder: Path, data_name: str) -> dict[str, Any]:
    data_config = replace(
        DataConfig(dataset=config.dataset, targets_per_user=config.targets_per_user),
        limit_users=config.limit_users,
    )
    built = build_dataset(data_config, _snapshot(config, folder), name=data_name)
    return {
        "folder": str(built.folder),
        "sha256": built.manifest["sha256"],
        "counts": built.manifest["counts"],
    }


def validate_job(config: RetrainConfig) -> None:
    if config.limit_users is not None and config.limit_users < 1:
        raise UserInputError(f"limit_users must be >= 1, got {config.limit_users}")
