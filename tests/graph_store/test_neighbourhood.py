"""The neighbourhood helpers the Bolt store ranks with (pure functions, hand-checked)."""

from __future__ import annotations

from graph_store.neighbourhood import recent_window


def test_recent_window_uses_latest_time_per_item_then_id_desc() -> None:
    adjacency = (["a", "b", "a", "c", "d"], [1, 5, 7, 5, 2])
    assert recent_window(adjacency, 3) == ["a", "c", "b"]  # a@7, then c/b tie at 5: id desc
    assert recent_window(adjacency, 10) == ["a", "c", "b", "d"]
