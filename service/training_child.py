"""The first run's background training: `r2rec serve --train` starts the quick retrain
profile as a child process while the graph scorer answers, and reports its progress.

With ``R2REC_TRAIN_ON_START`` (set by ``scripts/run.sh`` unless ``--no-train``), the
in-process backend, no model path, no base model asked for and nothing published yet,
`start_training_child` launches, at nice 10::

    python -m r2rec retrain --config $R2REC_TRAIN_CONFIG --dataset $R2REC_DATASET \\
        --name first-run-$R2REC_DATASET

with its output (a progress bar per stage and step) in ``runs/<job>/child.log``. The job
is the ordinary resumable retrain (`training.retrain`), so a restarted service continues
where the last one stopped, and a finished job returns at once. When its model passes
the publish gate it is published, and the running service switches to it on its next
watch tick (`service.runtime.watch_published`). The service never imports the training
code: it reads the job's progress file (`common.progress`) for ``/readyz``
(`training_status`) and ``/metrics`` (`TrainingCollector`). The child dies with the
server (SIGTERM on shutdown; on Linux also if the server is killed).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from common.paths import published_dir, runs_root
from common.progress import first_run_job, read_progress
from service.settings import Settings

log = logging.getLogger(__name__)


def why_not_train(settings: Settings) -> str | None:
    """None when the first-run training should start; else the reason it does not."""
    if not settings.train_on_start:
        return "training on start is off (R2REC_TRAIN_ON_START)"
    if settings.llm_backend != "local":
        return "the vLLM backend switches models by restart; run `r2rec retrain` instead"
    if settings.model_path is not None:
        return "a model path is set (R2REC_MODEL_PATH)"
    if settings.serve_base_model:
        return "the base model is served as asked (R2REC_SERVE_BASE_MODEL)"
    if (published_dir() / "config.json").is_file():
        return "a trained model is published"
    if not settings.train_config.is_file():
        return f"no training profile at {settings.train_config} (R2REC_TRAIN_CONFIG)"
    return None


def start_training_child(settings: Settings) -> subprocess.Popen[bytes] | None:
    """Start the first-run job in the background (see the module docstring), or log why not."""
    reason = why_not_train(settings)
    if reason is not None:
        log.info("first-run training not started: %s", reason)
        return None
    job = first_run_job(settings.dataset)
    folder = runs_root() / job
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "r2rec",
        "retrain",
        "--config",
        str(settings.train_config.resolve()),
        "--dataset",
        settings.dataset,
        "--name",
        job,
    ]
    with (folder / "child.log").open("ab") as out:
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, preexec_fn=_nice_orphan
        )
    log.info("first-run training started: job %s, pid %d, log %s", job, child.pid, out.name)
    return child


def stop_training_child(child: subprocess.Popen[bytes] | None, wait_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``wait_s``; the job resumes on the next start."""
    if child is None or child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(wait_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _nice_orphan() -> None:  # runs in the child between fork and exec
    os.nice(10)
    try:  # Linux: die with the server even if it is killed without cleanup
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def training_status(settings: Settings) -> dict[str, Any] | None:
    """The first-run job's progress for ``/readyz``; None if it never ran."""
    record = read_progress(first_run_job(settings.dataset))
    if record is None:
        return None
    keys = (
        "job",
        "state",
        "stage",
        "phase",
        "step",
        "steps",
        "fraction",
        "published",
        "reason",
        "error",
    )
    return {k: record[k] for k in keys if record.get(k) is not None}


class TrainingCollector(Collector):
    """``r2rec_training_fraction`` and ``r2rec_training_running`` for the first-run job,
    read from its progress file at each scrape."""

    def __init__(self, settings: Settings) -> None:
        self.job = first_run_job(settings.dataset)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        record = read_progress(self.job) or {}
        fraction = GaugeMetricFamily(
            "r2rec_training_fraction",
            "Share of the first-run training job done (0 to 1; absent if it never ran)",
            labels=["job", "stage", "state"],
        )
        running = GaugeMetricFamily(
            "r2rec_training_running", "1 while the first-run training job runs", labels=["job"]
        )
        if record:
            labels = [self.job, str(record.get("stage")), str(record.get("state"))]
            fraction.add_metric(labels, float(record.get("fraction") or 0.0))
        running.add_metric([self.job], 1.0 if record.get("state") == "running" else 0.0)
        yield fraction
        yield running
