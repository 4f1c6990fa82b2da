"""Where R2Rec keeps generated files: datasets, case files, models, runs.

Everything lives under one home folder, ``$R2REC_HOME`` (default ``./.r2rec`` in the
current directory), so a fresh clone is self-contained and tests can point it at a
temporary folder::

    datasets/<name>/                                imported datasets (`recdata.store`)
    cases/<dataset>/seed<seed>/                     evaluation case files (`evaluation.protocol`)
    results/                                        `r2rec eval` output
    data/<name>/examples.jsonl + manifest.json      training datasets (`training.data`)
    runs/<name>/                                    one training run (`training.run_folder`)
    models/<name>/                                  model folders (base, tiny)
    models/published/ + models/published.json       the served model (`training.publish`)
    journal/<dataset>.jsonl                         the embedded graph store's write journal
                                                    (`graph_store.journal`)
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("R2REC_HOME", Path.cwd() / ".r2rec")).resolve()


def datasets_dir() -> Path:
    return home() / "datasets"


def cases_dir() -> Path:
    return home() / "cases"


def models_dir() -> Path:
    return home() / "models"


def results_dir() -> Path:
    return home() / "results"


def data_root() -> Path:
    return home() / "data"


def runs_root() -> Path:
    return home() / "runs"


def published_dir() -> Path:
    return models_dir() / "published"


def published_manifest() -> Path:
    return models_dir() / "published.json"


def published_rating_dir() -> Path:
    """The rating model POST /rate serves (`training.rating.publish`)."""
    return models_dir() / "rating"


def published_fused_dir() -> Path:
    """The fused ranker (collaborative base + LLM head) the service ranks with
    (`training.fused_publish`)."""
    return models_dir() / "fused"


def journal_dir() -> Path:
    return home() / "journal"


def journal_file(dataset: str) -> Path:
    """The embedded graph store's journal of writes on top of ``dataset``."""
    return journal_dir() / f"{dataset}.jsonl"
