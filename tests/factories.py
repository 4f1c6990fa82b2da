"""Small builders for test data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reasoning.collaborative import FEATURE_NAMES
from reasoning.compact import HiddenHead
from recdata.schema import Dataset

# Collaborative feature models small enough to fit in seconds (SASRec's max_len is below
# most histories, so truncation is exercised); keys as in `baselines.features`.
TINY_FEATURE_CONFIGS: dict[str, dict[str, Any]] = {
    "sasrec": {"hidden": 16, "blocks": 1, "epochs": 3, "max_len": 12, "dropout": 0.1},
    "bpr": {"dim": 8, "epochs": 3},
}


def make_dataset(rows: list[tuple[str, str, int]], n_items: int, name: str = "toy") -> Dataset:
    """A dataset from (user, item, timestamp) rows over items '0'..str(n_items - 1)."""
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    items = pd.DataFrame(
        {
            "item_id": [str(i) for i in range(n_items)],
            "title": [f"Item {i}" for i in range(n_items)],
        }
    )
    return Dataset.from_frames(name, interactions, items)


def write_hidden_head_run(
    run: Path, d: int, dataset: str, model_path: Path, scale: str = "raw"
) -> None:
    """A hidden-head run folder as `training.hidden_head` writes it (summary + a last-token
    head at layer 1 reading ``scale`` states)."""
    rng = np.random.default_rng(3)
    run.mkdir(parents=True)
    HiddenHead(
        1,
        "last",
        0,
        0.01,
        np.zeros(d),
        np.ones(d),
        np.eye(d) / np.sqrt(d),
        rng.normal(size=d),
        scale,
    ).save(run / "head-all.npz")
    weights = dict(zip(FEATURE_NAMES, [1.0, 0.4, 0.6, -0.2, 0.1], strict=True))
    blank = dict.fromkeys(["HR@5", "NDCG@10", "HR@1 stderr", "p_vs_sasrec", "p_vs_combiner"])
    rows = [
        {"model": m, "HR@1": hr, "n": 8, **blank} for m, hr in [("base", 0.375), ("fused", 0.5)]
    ]
    summary = {
        "config": {
            "dataset": dataset,
            "model_path": str(model_path),
            "history_items": 5,
            "title_chars": 18,
            "genres": 1,
        },
        "variants": {
            "all features": {
                "base": {"l2": 0.01, "weights": weights},
                "head_file": "head-all.npz",
                "select_nll": {"base": 2.0, "fused": 1.9},
                "test_rows": [0, 1],
            }
        },
        "rows": rows,
    }
    (run / "summary.json").write_text(json.dumps(summary))
