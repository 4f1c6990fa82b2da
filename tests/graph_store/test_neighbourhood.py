"""The neighbourhood helpers the Bolt store ranks with (pure functions, hand-checked)."""

from __future__ import annotations

import numpy as np

from graph_store.memory import MemoryGraphStore
from graph_store.neighbourhood import UNTIMED, recent_window, select_neighbours


def test_recent_window_uses_latest_time_per_item_then_id_desc() -> None:
    adjacency = (["a", "b", "a", "c", "d"], [1, 5, 7, 5, 2])
    assert recent_window(adjacency, 3) == ["a", "c", "b"]  # a@7, then c/b tie at 5: id desc
    assert recent_window(adjacency, 10) == ["a", "c", "b", "d"]


def test_select_neighbours_counts_distinct_shared_items_and_breaks_ties_by_id() -> None:
    raters = {
        "i1": (["u", "v2", "v1", "v1"], None),  # v1 twice on i1 (two edges): one shared item
        "i2": (["u", "v1", "v2", "v3"], None),
        "i3": (["v3"], None),  # outside the window: does not count
    }
    window = ["i1", "i2"]
    assert select_neighbours("u", raters, window, 1, 10) == ["v1", "v2", "v3"]
    assert select_neighbours("u", raters, window, 2, 10) == ["v1", "v2"]  # v3 shares one
    assert select_neighbours("u", raters, window, 2, 1) == ["v1"]
    assert select_neighbours("u", raters, window, 1, 10, must_reach={"v3"}) == ["v3"]


def test_untimed_edges_never_hide_a_real_time() -> None:
    users = np.array(["u", "u", "v"], dtype=object)
    items = np.array(["i", "i", "i"], dtype=object)
    store = MemoryGraphStore.from_edges(users, items, np.array([UNTIMED, 40, UNTIMED]))
    snap = store._snap
    u = snap.user_index["u"]
    assert snap.pair_ts[snap.pair_ptr[u] : snap.pair_ptr[u + 1]].tolist() == [40]
