"""The canonical in-memory form of a recommendation dataset, shared by every part.

A `Dataset` is two pandas frames with fixed column names and dtypes:

- ``interactions``: ``user_id`` (str), ``item_id`` (str), ``timestamp`` (int64, Unix
  seconds), ``rating`` (float64, NaN when the source has no explicit rating).
- ``items``: ``item_id`` (str, unique), ``title`` (str), plus any optional text columns
  (``genres``, ``year``, ...), all as strings.

Ids are strings everywhere (the REST API takes strings); every interaction's item is in
``items``. Loaders and the importer produce this form; nothing downstream re-validates.

    >>> ds = Dataset.from_frames("toy", interactions_df, items_df)
    >>> ds.n_users, ds.n_items
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd

INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp", "rating")
ITEM_REQUIRED_COLUMNS = ("item_id", "title")


@dataclass(frozen=True)
class Dataset:
    """A named interaction log plus item metadata, in canonical columns and dtypes."""

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    meta: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_frames(
        cls,
        name: str,
        interactions: pd.DataFrame,
        items: pd.DataFrame,
        meta: dict[str, str] | None = None,
    ) -> Dataset:
        """Coerce two frames to canonical dtypes and column order (no validation)."""
        inter = pd.DataFrame(
            {
                "user_id": interactions["user_id"].astype(str).to_numpy(),
                "item_id": interactions["item_id"].astype(str).to_numpy(),
                "timestamp": interactions["timestamp"].astype("int64").to_numpy(),
                "rating": (
                    interactions["rating"].astype("float64").to_numpy()
                    if "rating" in interactions
                    else float("nan")
                ),
            }
        )
        extra = [c for c in items.columns if c not in ITEM_REQUIRED_COLUMNS]
        it = pd.DataFrame(
            {
                "item_id": items["item_id"].astype(str).to_numpy(),
                "title": items["title"].fillna("").astype(str).to_numpy(),
                **{c: items[c].fillna("").astype(str).to_numpy() for c in extra},
            }
        )
        return cls(name=name, interactions=inter, items=it, meta=dict(meta or {}))

    @property
    def n_users(self) -> int:
        return int(self.interactions["user_id"].nunique())

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_interactions(self) -> int:
        return len(self.interactions)

    @cached_property
    def titles(self) -> dict[str, str]:
        """item_id -> title."""
        return dict(zip(self.items["item_id"], self.items["title"], strict=True))

    def sorted_interactions(self) -> pd.DataFrame:
        """Interactions ordered by (user_id, timestamp, item_id): the protocol's order."""
        return self.interactions.sort_values(
            ["user_id", "timestamp", "item_id"], kind="mergesort"
        ).reset_index(drop=True)

    def summary(self) -> dict[str, int]:
        return {
            "users": self.n_users,
            "items": self.n_items,
            "interactions": self.n_interactions,
        }
