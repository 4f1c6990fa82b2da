"""Small builders for test data."""

from __future__ import annotations

from typing import Any

import pandas as pd

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
