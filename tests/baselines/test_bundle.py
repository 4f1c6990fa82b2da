"""baselines.bundle + reasoning.collaborative: the served columns equal the offline features.

A bundle fitted on the test split's training log of a slice of ML-100K, scoring each test
case from the graph store's history (what the service reads), must reproduce
``baselines.features.compute_features`` for the same cases, column by column.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from baselines.bundle import combiner_weights, main
from baselines.combiner import ListwiseCombiner
from baselines.features import compute_features, rowset_cases
from graph_store.memory import MemoryGraphStore
from reasoning.collaborative import FEATURE_NAMES, CollaborativeBundle
from recdata.schema import Dataset
from tests.factories import TINY_FEATURE_CONFIGS


async def _served(
    bundle: CollaborativeBundle, store: MemoryGraphStore, user: str, candidates: list[str]
) -> np.ndarray:
    history = await store.history(user, bundle.history_needed)
    found = await store.candidates(user, len(candidates), among=candidates)
    graph_scores = {c.item.item_id: float(c.score) for c in found}
    sequence = [h.item.item_id for h in reversed(history)]
    return bundle.features(user, sequence, candidates, graph_scores)


def test_served_columns_equal_the_offline_features(
    ml100k_slice: Dataset,
    slice_bundle: tuple[CollaborativeBundle, MemoryGraphStore],
    tmp_path: Path,
) -> None:
    bundle, store = slice_bundle
    cases = rowset_cases(ml100k_slice, "test")
    offline = compute_features(ml100k_slice, "test", TINY_FEATURE_CONFIGS)
    assert len(cases) == 60 and (np.abs(offline.scores).sum(axis=(0, 1)) > 0).all()
    bundle.save(tmp_path / "bundle")
    loaded = CollaborativeBundle.load(tmp_path / "bundle")
    for case, expected in zip(cases, offline.scores, strict=True):
        served = asyncio.run(_served(loaded, store, case.user_id, list(case.candidates)))
        np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-5)
    # the combiner's score is the offline combiner's on the same columns
    combiner = ListwiseCombiner(weights=bundle.weights, l2=0.0, names=FEATURE_NAMES)
    case = cases[0]
    served = asyncio.run(_served(loaded, store, case.user_id, list(case.candidates)))
    np.testing.assert_allclose(
        loaded.score(served), combiner.score(offline.scores[:1])[0], rtol=1e-5, atol=1e-5
    )


def test_unknown_items_and_a_user_with_no_history(
    slice_bundle: tuple[CollaborativeBundle, MemoryGraphStore],
) -> None:
    bundle, _ = slice_bundle
    candidates = ["50", "1", "no-such-item"]
    cold = bundle.features("new-user", [], candidates, {})
    # no history: SASRec and BPR fall back on popularity; the unknown item scores lowest
    assert cold[0, 0] == cold[0, 3] == bundle.popularity[bundle.item_index["50"]]
    assert (cold[2, :4] < cold[:2, :4].min(axis=0)).all()
    assert cold[2, 4] == -1.0
    # an unknown user with history: BPR reads the mean of the history items' factors
    warm = bundle.features("new-user", ["50", "181", "unknown"], candidates, {"1": 3.0})
    vec = bundle.bpr_items[[bundle.item_index["50"], bundle.item_index["181"]]].mean(axis=0)
    j = bundle.item_index["1"]
    assert warm[1, 2] == pytest.approx(float(bundle.bpr_items[j] @ vec + bundle.bpr_bias[j]))
    assert warm[1, 4] == 3.0 and warm[0, 4] == 0.0


def test_cli_writes_a_bundle_and_refuses_a_missing_feature_file(
    ml100k_slice: Dataset, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--dataset", "ml-100k", "--results", "x.json", "--features", str(tmp_path)]
    assert main([*args, "--out", str(tmp_path / "b")]) == 2
    assert "no feature file" in capsys.readouterr().err
    compute_features(ml100k_slice, "valid", TINY_FEATURE_CONFIGS).save(tmp_path / "valid.npz")
    weights, described = combiner_weights(tmp_path, "valid")
    assert weights.shape == (5,) and described["rowset"] == "valid"
    assert not (tmp_path / "b").exists()
