"""A batch job's progress, written by the job and read by the service: one JSON file.

The retrain job (`training.retrain`) rewrites ``runs/<job>/progress.json`` whole (atomic
rename) at every stage boundary and every optimiser step; the service reads it for
``/readyz`` and ``/metrics`` (`service.training_child`). The file names the writer's
pid, so a reader can tell a job that is running from one that was killed::

    write_progress("first-run-ml-100k", state="running", stage="sft", stage_index=2,
                   stages=6, step=3, steps=20)
    read_progress("first-run-ml-100k")["fraction"]    # 0.358...
    progress_bar(0.358)                                # '[##########----------------]  36%'
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.files import write_json_atomic
from common.paths import runs_root

STATES = ("running", "finished", "failed")


def first_run_job(dataset: str) -> str:
    """The job `r2rec serve --train` starts for a dataset with no published model."""
    return f"first-run-{dataset}"


def progress_path(job: str) -> Path:
    return runs_root() / job / "progress.json"


def job_fraction(stage_index: int, stages: int, step: int | None, steps: int | None) -> float:
    """Overall fraction done: finished stages plus the current stage's step share.

    >>> round(job_fraction(2, 6, 3, 20), 3)    # stage 3 of 6, 3 of its 20 steps done
    0.358
    """
    inner = min(1.0, step / steps) if step is not None and steps else 0.0
    return max(0.0, min(1.0, (stage_index + inner) / max(stages, 1)))


def progress_bar(fraction: float, width: int = 26) -> str:
    """``[#####-----]  50%`` for a log line."""
    filled = round(fraction * width)
    return f"[{'#' * filled}{'-' * (width - filled)}] {round(100 * fraction):3d}%"


def write_progress(
    job: str,
    *,
    state: str,
    stage: str,
    stage_index: int,
    stages: int,
    step: int | None = None,
    steps: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Replace the job's progress record; returns it."""
    if state not in STATES:
        raise ValueError(f"state must be one of {STATES}, got {state!r}")
    record = {
        "job": job,
        "state": state,
        "stage": stage,
        "stage_index": stage_index,
        "stages": stages,
        "step": step,
        "steps": steps,
        "fraction": 1.0 if state == "finished" else job_fraction(stage_index, stages, step, steps),
        "pid": os.getpid(),
        "updated_unix": time.time(),
        **extra,
    }
    write_json_atomic(progress_path(job), record)
    return record


def read_progress(job: str) -> dict[str, Any] | None:
    """The job's last record, with ``state`` "stopped" when it says running but its
    process is gone (killed); None when the job never wrote one or the file is unreadable."""
    try:
        record = json.loads(progress_path(job).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    if record.get("state") == "running" and not _alive(record.get("pid")):
        record["state"] = "stopped"
    return record


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process holds the pid: it exists
        return True
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    """A child that exited but was not yet reaped still answers kill(0): check /proc."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): trust kill(0)
    return status.rsplit(")", 1)[-1].split()[0] != "Z"


class StageReporter:
    """Writes a job's progress file and a progress-bar log line for one of its
    ``stages``; the stage's training steps call it (step, steps, phase)."""

    def __init__(self, job: str, stage: str, stages: Sequence[str], log: logging.Logger) -> None:
        self.job, self.stage, self.stages = job, stage, tuple(stages)
        self.index, self.log, self.last_log = self.stages.index(stage), log, 0.0

    def __call__(self, step: int | None, steps: int | None, phase: str) -> None:
        record = write_progress(
            self.job,
            state="running",
            stage=self.stage,
            stage_index=self.index,
            stages=len(self.stages),
            step=step,
            steps=steps,
            phase=phase,
        )
        if phase != "training" or time.monotonic() - self.last_log > 5 or step == steps:
            self.last_log = time.monotonic()
            where = f"{self.stage} step {step}/{steps}" if step is not None else self.stage
            self.log.info("%s %s %s (%s)", progress_bar(record["fraction"]), self.job, where, phase)

    def finish(self, record: dict[str, Any]) -> None:
        write_progress(
            self.job,
            state="finished",
            stage=self.stages[-1],
            stage_index=len(self.stages),
            stages=len(self.stages),
            published=bool(record.get("published")),
            reason=record.get("reason"),
            run=record.get("run"),
            valid_hr1=record.get("valid_hr1"),
            classical_hr1=record.get("classical_hr1"),
        )
        self.log.info("%s %s finished", progress_bar(1.0), self.job)

    def fail(self, err: BaseException) -> None:
        write_progress(
            self.job,
            state="failed",
            stage=self.stage,
            stage_index=self.index,
            stages=len(self.stages),
            error=f"{type(err).__name__}: {err}"[:300],
        )
