"""Small builders for test data."""

from __future__ import annotations

import pandas as pd

from recdata.schema import Dataset


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
