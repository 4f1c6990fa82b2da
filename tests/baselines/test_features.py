"""baselines.features: no row's feature model saw that row's target (or anything after it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from baselines.features import (
    FeatureSet,
    compute_features,
    rowset_cases,
    rowset_offset,
    rowset_training_log,
)
from evaluation.protocol import load_cases, training_log
from recdata.schema import Dataset
from tests.baselines.synthetic import items_frame


def _dataset(n_users: int = 30, n_items: int = 80, seed: int = 1) -> Dataset:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        length = int(rng.integers(4, 16))  # some users below min_interactions=5
        watched = rng.choice(n_items, size=length, replace=False)
        rows += [(f"u{u}", str(i), 1000 + t, 4.0) for t, i in enumerate(watched)]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    return Dataset.from_frames("synthetic", inter, items_frame(n_items))


def _pairs(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame["user_id"].astype(str), frame["item_id"].astype(str), strict=True))


@pytest.mark.parametrize("rowset", ["test", "valid", "train3", "train4", "train6"])
def test_fit_log_never_holds_a_rows_target_or_anything_after_it(rowset: str) -> None:
    dataset = _dataset()
    cases = rowset_cases(dataset, rowset)
    fit_log = rowset_training_log(dataset, rowset)
    assert cases
    pairs = _pairs(fit_log)
    last_seen = fit_log.groupby("user_id")["timestamp"].max()
    for case in cases:
        assert (case.user_id, case.target) not in pairs
        # the user's fit-log interactions all precede the target
        assert last_seen.get(case.user_id, -1) < case.timestamp
        assert case.target in case.candidates and len(set(case.candidates)) == 20
        # negatives were never interacted with, at any time
        user_items = set(
            dataset.interactions.loc[dataset.interactions["user_id"] == case.user_id, "item_id"]
        )
        assert user_items & set(case.candidates) == {case.target}
        # the history is the (up to 10) items just before the target, all in the fit log
        assert all((case.user_id, h) in pairs for h in case.history)


def test_test_and_valid_are_the_protocols_own_files_and_logs() -> None:
    dataset = _dataset()
    for split in ("test", "valid"):
        assert rowset_cases(dataset, split) == load_cases(dataset, split)
        pd.testing.assert_frame_equal(
            rowset_training_log(dataset, split), training_log(dataset, split)
        )


def test_rowsets_differ_and_bad_names_fail() -> None:
    dataset = _dataset()
    t3 = {c.user_id: c.target for c in rowset_cases(dataset, "train3")}
    valid = {c.user_id: c.target for c in rowset_cases(dataset, "valid")}
    assert all(t3[u] != valid[u] for u in t3.keys() & valid.keys())
    assert rowset_offset("train12") == 12
    for bad in ("train2", "train", "other"):
        with pytest.raises(ValueError):
            rowset_offset(bad)


def test_compute_features_shapes_and_round_trip(tmp_path: Path) -> None:
    dataset = _dataset()
    feats = compute_features(dataset, "train3", models=("popularity", "itemknn"))
    assert feats.scores.shape == (len(feats.cases), 20, 2)
    assert feats.fit_log_rows == len(rowset_training_log(dataset, "train3"))
    path = tmp_path / "train3.npz"
    feats.save(path)
    back = FeatureSet.load(path)
    assert back.cases == feats.cases and back.names == feats.names
    np.testing.assert_array_equal(back.scores, feats.scores)
    np.testing.assert_array_equal(back.column("itemknn"), feats.scores[:, :, 1])
