"""Rating training data (RecZero / RecOne): rated history -> target item -> true rating.

    r2rec train data --task rating --dataset ml-100k [--split valid] [--limit-users N]

One example per training target, all from the protocol's training log for ``split``
(`evaluation.protocol.training_log`: everything before each evaluated user's ``split``
target), so no validation/test target is ever a training target or shown in a history:

1. Targets: per user, the last ``targets_per_user`` rated interactions of that log
   (round r = the r-th last), in the protocol's (timestamp, item_id) order.
2. History: the up to ``history_size`` rated items just before the target, oldest first;
   targets with fewer than ``min_history`` are skipped.
3. Prompt: `reasoning.rating.render_rating_messages(history, target)`.
4. Cold-start completion (RecOne's SFT; GRPO ignores it), rendered by
   `render_rating_completion` from facts (`completion_facts`):
   - analyse_user: the mean of the history's ratings, the liked genres (mean rating in the
     history >= 4) and disliked ones (mean <= 2.5), at most 3 each, the most frequent first;
   - analyse_item: the target's title, year and genres, and its mean rating among the
     other users of the log (never the user's own rating);
   - match: which liked/disliked genres the item has, and the estimate the two means give;
   - rate: the true rating (clipped to 1-5 for the text; ``rating`` keeps the true value).

Interactions without a rating (NaN) are dropped first; a dataset without any is refused.
Rows (`training.rows.RatingRow`, keys sorted): ``id``, ``user_id``, ``item_id``,
``round``, ``timestamp``, ``history`` (item ids, oldest first), ``prompt`` (messages),
``completion`` (one assistant message), ``rating`` (float, the column
`reasoning.rewards.rating_reward` reads), ``variant`` 0, ``source`` "template". Written
through `training.datasets.write_versioned` (manifest with ``task: rating``, config, counts,
sha256; an identical rebuild is skipped).
Nothing is sampled, so the manifest's seed is null and the bytes depend on config and data.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from common.errors import UserInputError
from evaluation.rating import item_infos, rated_log
from reasoning.rating import RatedItem, render_rating_messages
from reasoning.rating_template import cold_start_completion, completion_facts
from recdata.schema import Dataset
from training.data import TargetsConfig
from training.datasets import BuiltData, DatasetSpec, dataset_folder, write_versioned
from training.rows import RatingRow

RATING_FORMAT_VERSION = 1


@dataclass(frozen=True)
class RatingDataConfig(TargetsConfig):
    """How a rating dataset is built (the history holds rated items); every field enters
    the manifest."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_history < 1:
            raise UserInputError(f"min_history must be >= 1, got {self.min_history}")
        if self.min_history > self.history_size:
            raise UserInputError("min_history must be <= history_size")

    def default_name(self) -> str:
        users = f"-u{self.limit_users}" if self.limit_users else ""
        return f"{self.dataset}-rating-{self.split}-t{self.targets_per_user}{users}"


def _item_totals(
    log: pd.DataFrame,
) -> tuple[dict[str, tuple[float, int]], dict[tuple[str, str], tuple[float, int]]]:
    """(item -> (sum, count), (user, item) -> (sum, count)) of the log's ratings."""
    per_item = log.groupby("item_id")["rating"].agg(["sum", "count"])
    per_pair = log.groupby(["user_id", "item_id"])["rating"].agg(["sum", "count"])
    items = {str(i): (float(s), int(c)) for i, s, c in per_item.itertuples()}
    pairs = {(str(u), str(i)): (float(s), int(c)) for (u, i), s, c in per_pair.itertuples()}
    return items, pairs


@dataclass(frozen=True)
class LogTarget:
    """One training target of a rating log: the r-th last rated item of a user, with the
    rated history just before it and the other users' ratings of the item."""

    user_id: str
    round: int
    timestamp: int
    item_id: str
    rating: float
    history: tuple[RatedItem, ...]  # oldest first
    item_mean: float | None  # other users' mean rating of the item; None: nobody
    item_count: int  # how many other users rated it


def log_targets(config: RatingDataConfig, dataset: Dataset) -> list[LogTarget]:
    """Every training target of the split's rated log, ordered by (user id, round)."""
    log = rated_log(dataset, config.split)
    infos = item_infos(dataset)
    item_totals, pair_totals = _item_totals(log)
    users = sorted(log["user_id"].astype(str).unique())
    if config.limit_users is not None:
        users = users[: config.limit_users]
    chosen = set(users)
    found: list[LogTarget] = []
    for user, frame in log.groupby("user_id", sort=True):
        user = str(user)
        if user not in chosen:
            continue
        entries = list(
            zip(
                frame["item_id"].astype(str),
                frame["rating"].astype(float),
                frame["timestamp"].astype(int),
                strict=True,
            )
        )
        for round_ in range(1, config.targets_per_user + 1):
            pos = len(entries) - round_
            before = entries[max(0, pos - config.history_size) : max(0, pos)]
            if pos < 0 or len(before) < config.min_history:
                continue
            item, rating, timestamp = entries[pos]
            total, count = item_totals[item]
            own_total, own_count = pair_totals[(user, item)]
            others = count - own_count
            found.append(
                LogTarget(
                    user,
                    round_,
                    timestamp,
                    item,
                    rating,
                    tuple(RatedItem(infos[i], r) for i, r, _ in before),
                    (total - own_total) / others if others else None,
                    others,
                )
            )
    return found


def build_rating_examples(config: RatingDataConfig, dataset: Dataset) -> list[RatingRow]:
    """Every rating training row, ordered by (user id, round)."""
    infos = item_infos(dataset)
    rows: list[RatingRow] = []
    for t in log_targets(config, dataset):
        facts = completion_facts(t.history, t.item_mean, t.item_count)
        text = cold_start_completion(facts, infos[t.item_id], len(t.history), t.rating)
        rows.append(
            {
                "id": f"rating-u{t.user_id}-r{t.round}",
                "user_id": t.user_id,
                "item_id": t.item_id,
                "round": t.round,
                "timestamp": t.timestamp,
                "history": [h.item.item_id for h in t.history],
                "prompt": render_rating_messages(list(t.history), infos[t.item_id]),
                "completion": [{"role": "assistant", "content": text}],
                "rating": t.rating,
                "variant": 0,
                "source": "template",
            }
        )
    return rows


@dataclass
class RatingCounts:
    """Rows (one per example), users, the mean rating and rows per rating."""

    rows: int = 0
    users: set[str] = field(default_factory=set)
    ratings: list[float] = field(default_factory=list)

    def add(self, row: RatingRow) -> None:
        self.rows += 1
        self.users.add(row["user_id"])
        self.ratings.append(row["rating"])

    def summary(self) -> dict[str, Any]:
        by_rating = Counter(self.ratings)
        return {
            "rows": self.rows,
            "examples": self.rows,
            "users": len(self.users),
            "mean_rating": round(float(np.mean(self.ratings)), 4) if self.ratings else None,
            "by_rating": {f"{k:g}": by_rating[k] for k in sorted(by_rating)},
        }


def build_rating_dataset(
    config: RatingDataConfig, dataset: Dataset, name: str | None = None, force: bool = False
) -> BuiltData:
    """Build and write the rating dataset; an identical one already there is skipped."""
    spec = DatasetSpec("rating", RATING_FORMAT_VERSION, asdict(config), None, RatingCounts)
    return write_versioned(
        dataset_folder(name or config.default_name()),
        spec,
        dataset,
        lambda: build_rating_examples(config, dataset),
        force,
    )
