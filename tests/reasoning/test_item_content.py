"""reasoning.item_content: the content columns, worked by hand, and their file round trip."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reasoning.collaborative import zscore_per_case
from reasoning.item_content import HISTORY, METADATA_NAMES, VECTOR_NAMES, ItemContent


def _items() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "title": ["A", "B", "C", "D"],
            "year": ["1990", "1994", "", "2000"],
            "genres": ["Drama", "Drama|War", "Comedy", ""],
        }
    )


def test_metadata_columns_by_hand() -> None:
    content = ItemContent.from_items(_items())
    assert content.names == METADATA_NAMES
    columns = content.features(["a", "b"], ["b", "c", "d", "unknown"])
    # history genres: Drama x2, War x1 (3 in all); history mean year 1992
    np.testing.assert_allclose(columns[:, 0], [(2 + 1) / 3 / 2, 0.0, 0.0, 0.0])
    # c has no year and the unknown item none either: both take the history's mean year
    np.testing.assert_allclose(columns[:, 1], [-2.0, 0.0, -8.0, 0.0])
    np.testing.assert_allclose(columns[:, 2], [1994.0, 1992.0, 2000.0, 1992.0])


def test_llm_similarities_by_hand() -> None:
    raw = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]]) + 5.0  # centred away
    content = ItemContent.from_items(_items(), vectors=raw, layer=3)
    assert content.names == METADATA_NAMES + VECTOR_NAMES and content.layer == 3
    unit = raw - raw.mean(axis=0)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    columns = content.features(["a", "b"], ["c", "d"])
    mean = unit[:2].mean(axis=0) / np.linalg.norm(unit[:2].mean(axis=0))
    np.testing.assert_allclose(columns[:, 3], unit[[2, 3]] @ mean, atol=2e-3)  # float16
    np.testing.assert_allclose(columns[:, 4], (unit[[2, 3]] @ unit[:2].T).max(1), atol=2e-3)
    np.testing.assert_allclose(columns[:, 5], unit[[2, 3]] @ unit[1], atol=2e-3)  # newest: b


def test_only_the_newest_history_items_are_read() -> None:
    content = ItemContent.from_items(_items(), vectors=np.eye(4), layer=1)
    old = ["a"] * 5 + ["b"] * HISTORY
    np.testing.assert_array_equal(
        content.features(old, ["a", "c"]), content.features(["b"] * HISTORY, ["a", "c"])
    )


def test_no_known_history_leaves_columns_that_z_score_to_zero() -> None:
    content = ItemContent.from_items(_items(), vectors=np.eye(4), layer=1)
    columns = content.features(["never-seen"], ["a", "b", "c"])
    z = zscore_per_case(columns[None])[0]
    assert not z[:, [0, 1, 3, 4, 5]].any()  # year itself still ranks recent releases
    assert z[1, 2] > z[0, 2]


def test_save_and_load_give_the_same_columns(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    content = ItemContent.from_items(_items(), vectors=rng.normal(size=(4, 8)), layer=7)
    content.save(tmp_path / "items.npz")
    loaded = ItemContent.load(tmp_path / "items.npz")
    assert loaded.layer == 7 and loaded.names == content.names
    np.testing.assert_array_equal(
        loaded.features(["a", "b"], ["c", "d", "a"]), content.features(["a", "b"], ["c", "d", "a"])
    )
    metadata = ItemContent.from_items(_items())
    metadata.save(tmp_path / "meta.npz")
    assert ItemContent.load(tmp_path / "meta.npz").names == METADATA_NAMES


def test_vectors_must_match_the_catalogue() -> None:
    with pytest.raises(ValueError, match="3 item vectors for 4 items"):
        ItemContent.from_items(_items(), vectors=np.zeros((3, 2)))
