"""`r2rec retrain`: the batch retraining job, runnable from cron or a compose profile.

    r2rec retrain --dataset ml-100k [--name nightly] [--sft-config FILE] [--grpo-config FILE]
    r2rec retrain --task rating --init sft      # RecOne: a cold start, then GRPO
    r2rec retrain --task rating --init base     # RecZero: GRPO from the base model

Stages, in order; each writes a marker ``runs/<job>/stages/<stage>.json`` when it has
finished, and a finished stage is skipped when the job runs again, so the job is
idempotent and resumes after a crash at the first unfinished stage (a training stage
itself resumes from its last checkpoint):

1. ``export``: snapshot what the configured graph store serves (`graph_store.snapshot`:
   the embedded store's dataset plus the service's journal of ingested interactions, or
   the Neo4j graph over Bolt) to ``export/`` with its fingerprint. When it differs from
   the named dataset, it is stored as dataset ``<dataset>-live`` and every later stage
   (training rows, evaluation cases, the publish comparison) uses that snapshot;
2. ``data``: build the task's training dataset from the snapshot (`training.tasks`:
   ranking rows, or rated history -> target -> rating for ``task=rating``);
3. ``sft``: supervised fine-tuning (`training.sft`), evaluated on the protocol (for the
   rating task, RecOne's cold start; skipped for RecZero, ``init=base``);
4. ``grpo``: GRPO from the SFT model, or from the base model for RecZero
   (`training.grpo`), unless ``grpo=false``;
5. ``evaluate``: record the final run's validation and test metrics (HR@1..., or MAE and
   RMSE beside the rating baselines);
6. ``publish``: promote the final run if its validation HR@1 beats the published model
   and the graph scorer (`training.publish`; ``publish_force`` skips the gate, recorded).
   For ``task=rating`` the default recipe is the rating head (``rating_recipe=head``,
   `training.rating.head_job`): its stages train the rating token, and ``publish`` gates
   and publishes it for /rate (`training.rating.publish`). The generative recipe
   (``rating_recipe=generate``) is not published; the stage records so.

The job's settings may come from a YAML file (``r2rec retrain --config FILE``; the quick
profile `r2rec serve --train` runs is ``training/configs/retrain-quick.yaml``). Its
progress (stage, optimiser step, overall fraction) is rewritten to
``runs/<job>/progress.json`` (`common.progress`) and logged as a progress bar.

The log goes to stderr and ``runs/<job>/retrain.log``. Exit codes (CLI): 0 = done
(published or not: the record says which), 1 = a stage failed (see the log), 2 = bad
input.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from common.errors import UserInputError
from common.files import read_json, write_json_atomic
from common.paths import runs_root
from common.progress import StageReporter
from graph_store.snapshot import StoreSource, export_source
from recdata.schema import Dataset
from training.config import GRPOConfig, SFTConfig, load_config
from training.stages import reporting_progress
from training.tasks import get_task
from training.tasks.base import DataRequest

log = logging.getLogger("r2rec.retrain")
STAGES = ("export", "data", "sft", "grpo", "evaluate", "publish")
UNPUBLISHED_RATING = (
    "a generated-reasoning rating model is not published: /rate serves the rating head"
)


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
    task: str = field(default="rank", metadata={"help": "rank (R2Rec) or rating (RecZero/One)."})
    init: str = field(
        default="sft",
        metadata={"help": "rating: where GRPO starts, sft (RecOne) or base (RecZero)."},
    )
    rating_recipe: str = field(
        default="head",
        metadata={
            "help": "rating: head (the rating token trained in one pass, published for "
            "/rate; training.rating.head_job) or generate (generated reasoning via TRL)."
        },
    )
    rank_recipe: str = field(
        default="llm",
        metadata={
            "help": "rank: llm (SFT then GRPO of the LLM ranker) or fused (collaborative "
            "base + the frozen LLM's hidden-state head, published for the service; "
            "training.fused_job)."
        },
    )
    feature_results: Path | None = field(
        default=None,
        metadata={"help": "fused: the baselines table whose tuned configs the features use."},
    )
    store: str = field(
        default="memory",
        metadata={"help": "Export from: memory (dataset + the service's journal) or neo4j."},
    )
    neo4j_uri: str = field(default="bolt://127.0.0.1:7687", metadata={"help": "neo4j: Bolt URI."})
    neo4j_user: str = field(default="neo4j", metadata={"help": "neo4j: user."})
    neo4j_password: str = field(default="", metadata={"help": "neo4j: password.", "secret": True})
    neo4j_database: str = field(default="neo4j", metadata={"help": "neo4j: database."})
    stop_after: str | None = field(
        default=None, metadata={"help": "Stop after this stage (e.g. export, data)."}
    )
    publish_force: bool = field(
        default=False,
        metadata={"help": "Publish even if the gate refuses (experiments; recorded)."},
    )

    def source(self) -> StoreSource:
        """The graph store the export stage snapshots."""
        bolt = None
        if self.store == "neo4j":
            from graph_store.neo4j_store import Neo4jConfig

            bolt = Neo4jConfig(
                uri=self.neo4j_uri,
                user=self.neo4j_user,
                password=self.neo4j_password,
                database=self.neo4j_database,
            )
        return StoreSource(dataset=self.dataset, kind=self.store, neo4j=bolt)

    @property
    def job(self) -> str:
        suffix = "" if self.task == "rank" else f"-{self.task}"
        return self.name or f"retrain-{self.dataset}{suffix}"

    @property
    def runs_sft(self) -> bool:
        """RecZero (rating, ``init=base``) has no supervised stage."""
        return self.task == "rank" or self.init == "sft"


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
    """Snapshot the served store; name it ``<dataset>-live`` (stored as an imported
    dataset, so evaluation can load it) unless it equals the named dataset."""
    import asyncio

    from common.paths import datasets_dir
    from evaluation.protocol import dataset_fingerprint
    from recdata import available_datasets, load_dataset
    from recdata.importer import write_dataset
    from recdata.store import dataset_vocabulary

    source = config.source()
    data = asyncio.run(export_source(source, name=config.dataset))
    fingerprint = dataset_fingerprint(data)
    named = config.dataset in available_datasets()
    base = load_dataset(config.dataset) if named else None
    if base is not None and dataset_fingerprint(base) == fingerprint:
        name = config.dataset
    else:
        name = f"{config.dataset}-live"
        words = dataset_vocabulary(config.dataset).to_meta()  # the snapshot keeps its words
        data = Dataset.from_frames(name, data.interactions, data.items, {**data.meta, **words})
        write_dataset(data, datasets_dir(), overwrite=True)
    out = folder / "export"
    out.mkdir(parents=True, exist_ok=True)
    data.interactions.to_parquet(out / "interactions.parquet", index=False)
    data.items.to_parquet(out / "items.parquet", index=False)
    return {
        "dataset": name,
        "source": source.describe(),
        "fingerprint": fingerprint,
        "interactions": len(data.interactions),
        "added_since_dataset": None
        if base is None
        else len(data.interactions) - len(base.interactions),
    }


def trained_dataset(config: RetrainConfig) -> str:
    """The dataset the job trains and evaluates on: the export stage's snapshot."""
    record = stage_done(config.job, "export") or {}
    return str(record.get("dataset", config.dataset))  # jobs exported before: the dataset


def _snapshot(config: RetrainConfig, folder: Path) -> Dataset:
    out = folder / "export"
    return Dataset.from_frames(
        trained_dataset(config),
        pd.read_parquet(out / "interactions.parquet"),
        pd.read_parquet(out / "items.parquet"),
    )


def _configs(config: RetrainConfig, data_name: str) -> tuple[SFTConfig, GRPOConfig]:
    job = config.job
    dataset = trained_dataset(config)
    shared = {"data": data_name, "dataset": dataset, "task": config.task}
    sft = load_config(
        SFTConfig, config.sft_config, {"name": f"{job}-sft", **shared, **config.sft_overrides}
    )
    start = None if not config.runs_sft else sft.name
    grpo = load_config(
        GRPOConfig,
        config.grpo_config,
        {"name": f"{job}-grpo", **shared, "init_run": start, **config.grpo_overrides},
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

    def configs() -> tuple[SFTConfig, GRPOConfig]:  # after the export: it names the dataset
        return _configs(config, data_name)

    def final() -> str:
        sft, grpo = configs()
        return grpo.name if config.grpo else sft.name

    def publish_stage() -> dict[str, Any]:
        if config.task != "rank":
            return {"published": False, "run": final(), "reason": UNPUBLISHED_RATING}
        return decision_json(publish(final(), force=config.publish_force))

    skipped = {"skipped": True}
    heads: Any = None
    preflight: Callable[[], object] | None = None
    if config.task == "rating" and config.rating_recipe == "head":
        from training.rating.head_job import HeadStages

        heads = HeadStages(config, lambda: trained_dataset(config))
        work = heads.work(lambda: _export(config, folder))
    elif config.rank_recipe == "fused":
        from training.fused_job import FusedStages

        heads = FusedStages(config, folder, lambda: _snapshot(config, folder))
        work = heads.work(lambda: _export(config, folder))
        preflight = heads.require_base
    else:
        work = {
            "export": lambda: _export(config, folder),
            "data": lambda: _data(config, folder, data_name),
            "sft": lambda: {"run": str(run_sft(configs()[0]))} if config.runs_sft else skipped,
            "grpo": lambda: {"run": str(run_grpo(configs()[1]))} if config.grpo else skipped,
            "evaluate": lambda: {"run": final(), "metrics": run_metrics(final())},
            "publish": publish_stage,
        }

    stage = STAGES[0]
    try:
        if preflight is not None:  # before any stage, so a missing input fails the job first
            preflight()
        for stage in STAGES:
            if stage_done(job, stage):
                log.info("%s: %s already done, skipped", job, stage)
                continue
            log.info("%s: %s ...", job, stage)
            started = time.perf_counter()
            report = StageReporter(job, stage, STAGES, log)
            report(None, None, "starting")
            with reporting_progress(report):
                result = work[stage]()
            _mark(job, stage, result, started)
            log.info("%s: %s done in %.1f s", job, stage, time.perf_counter() - started)
            if stage == "export":
                public = {
                    k: str(v) if isinstance(v, Path) else v
                    for k, v in asdict(config).items()
                    if k != "neo4j_password"
                }
                stages: dict[str, Any] = {}
                if heads is not None:
                    stages = heads.settings()
                else:
                    stages["sft"], stages["grpo"] = configs()
                write_json_atomic(
                    folder / "job.json",
                    {**public, **{k: v and asdict(v) for k, v in stages.items()}},
                )
            if stage == config.stop_after:
                log.info("%s: stopped after %s, as asked", job, stage)
                return dict(stage_done(job, stage) or {})
        record = stage_done(job, "publish") or {}
        log.info(
            "%s: finished; published=%s (%s)", job, record.get("published"), record.get("reason")
        )
        StageReporter(job, "publish", STAGES, log).finish(record)
        return record
    except Exception as err:
        log.exception("%s: stage failed; run the job again to resume", job)
        StageReporter(job, stage, STAGES, log).fail(err)
        raise
    finally:
        log.removeHandler(handler)
        handler.close()


def load_job(path: Path | None, overrides: dict[str, Any]) -> RetrainConfig:
    """The job from a YAML file (any `RetrainConfig` field) with ``overrides`` on top.
    A relative SFT/GRPO config path that is not found from the working directory is read
    from the project folder (``training/configs/...``), so the service's child finds it."""
    config = load_config(RetrainConfig, path, overrides)
    project = Path(__file__).resolve().parents[1]
    found = {}
    for key in ("sft_config", "grpo_config"):
        value = getattr(config, key)
        if value is not None and not value.is_absolute() and not value.is_file():
            found[key] = project / value
    return replace(config, **found) if found else config


def _data(config: RetrainConfig, folder: Path, data_name: str) -> dict[str, Any]:
    task = get_task(config.task)
    request = DataRequest(
        dataset=trained_dataset(config),
        limit_users=config.limit_users,
        targets_per_user=config.targets_per_user,
    )
    built = task.build_data(task.data_config(request), _snapshot(config, folder), name=data_name)
    return {
        "folder": str(built.folder),
        "sha256": built.manifest["sha256"],
        "counts": built.manifest["counts"],
    }


def validate_job(config: RetrainConfig) -> None:
    get_task(config.task)  # refuses an unknown task
    if config.rating_recipe not in ("head", "generate"):
        raise UserInputError(
            f"rating_recipe must be head or generate, got {config.rating_recipe!r}"
        )
    if config.task == "rating" and config.rating_recipe == "head":
        from training.rating.head_job import check_overrides

        check_overrides(config.sft_overrides, config.grpo_overrides)
    if config.rank_recipe not in ("llm", "fused"):
        raise UserInputError(f"rank_recipe must be llm or fused, got {config.rank_recipe!r}")
    if config.rank_recipe == "fused":
        from training import fused_job

        if config.task != "rank":
            raise UserInputError("rank_recipe=fused is for task=rank")
        fused_job.check_overrides(config.sft_overrides)
        fused_job.check_overrides(config.grpo_overrides, "explainer")
    if config.init not in ("sft", "base"):
        raise UserInputError(f"init must be sft or base, got {config.init!r}")
    if config.task == "rank" and config.init != "sft":
        raise UserInputError("init=base (RecZero) is for task=rating")
    if not config.runs_sft and not config.grpo:
        raise UserInputError("init=base trains only in the GRPO stage: leave grpo on")
    if config.limit_users is not None and config.limit_users < 1:
        raise UserInputError(f"limit_users must be >= 1, got {config.limit_users}")
    if config.stop_after is not None and config.stop_after not in STAGES:
        raise UserInputError(
            f"stop_after must be one of {', '.join(STAGES)}, got {config.stop_after!r}"
        )
    config.source()  # refuses an unknown store
