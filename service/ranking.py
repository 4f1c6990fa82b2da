"""Which ranker the service loads: the published fused ranker, when there is one.

The fused ranker (`reasoning.fused`) scores each candidate as the collaborative base plus
the LLM's hidden-state head; it was fitted for one dataset and one base model, so it is
refused (`StartupError` naming both) when the service serves another dataset, and the
in-process backend then loads that base model, not a published fine-tuned checkpoint.

    fused = open_fused(settings)            # None: the LLM's answer letters rank
    model = fused_model_path(fused)         # the base model folder the head reads
"""

from __future__ import annotations

import logging
from pathlib import Path

from reasoning.fused import FusedRanker
from service.settings import Settings

log = logging.getLogger(__name__)


class FusedStartupError(RuntimeError):
    """A fused ranker is configured but cannot serve these settings."""


def open_fused(settings: Settings) -> FusedRanker | None:
    """The fused ranker of ``settings.fused_path`` (default: the published one, when
    present); None with ``ranker=llm`` or when nothing is published."""
    from common.paths import published_fused_dir

    if settings.ranker == "llm":
        return None
    folder = settings.fused_path or published_fused_dir()
    if settings.fused_path is None and not (folder / "manifest.json").is_file():
        return None
    try:
        fused = FusedRanker.load(folder)
    except (OSError, ValueError, KeyError) as err:
        raise FusedStartupError(f"fused ranker at {folder} cannot be loaded: {err}") from err
    dataset = fused.manifest.get("dataset")
    if dataset != settings.dataset:
        raise FusedStartupError(
            f"the fused ranker at {folder} was fitted for {dataset!r} but the service serves "
            f"{settings.dataset!r}: set R2REC_DATASET={dataset} or R2REC_RANKER=llm"
        )
    log.info("ranking with the fused ranker at %s (%s)", folder, fused.label)
    return fused


def fused_model_path(fused: FusedRanker, settings: Settings) -> Path:
    """The model folder whose hidden states the head reads: ``model_path`` if set, else
    the prepared base model the run read (``$R2REC_HOME/models/<base_model>``)."""
    from common.paths import models_dir

    folder = settings.model_path or models_dir() / str(fused.manifest.get("base_model", ""))
    if not (folder / "config.json").is_file():
        raise FusedStartupError(
            f"the fused ranker reads the hidden states of {folder}, which is missing: run "
            "`r2rec model prepare-base` or set R2REC_MODEL_PATH"
        )
    return folder.resolve()


def fused_version(fused: FusedRanker) -> str:
    """'fused:<run folder name>@<publish time>': changes the cache keys on every publish."""
    run = Path(str(fused.manifest.get("run", "unknown"))).name
    return f"fused:{run}@{int(float(fused.manifest.get('published_unix', 0)))}"
