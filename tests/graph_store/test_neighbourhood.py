"""The neighbourhood helpers the Bolt store ranks with (pure functions, hand-checked)."""

from __future__ import annotations

import numpy as np

from graph_store.index import GraphIndex
from graph_store.neighbourhood import UNTIMED, recent_window


def test_recent_window_uses_latest_time_per_item_then_id_desc() -> None:
    adjacency = (["a", "b", "a", "c", "d"], [1, 5, 7, 5, 2])
    assert recent_window(adjacency, 3) == ["a", "c", "b"]  # a@7, then c/b tie at 5: id desc
    assert recent_window(adjacency, 10) == ["a", "c", "b", "d"]


def test_untimed_edges_never_hide_a_real_time() -> None:
    users = np.array(["u", "u", "v"], dtype=object)
    items = np.array(["i", "i", "i"], dtype=object)
    index = GraphIndex.from_edges(users, items, np.array([UNTIMED, 40, UNTIMED]))
    u = index.user_index["u"]
    assert index.pair_ts[index.pair_ptr[u] : index.pair_ptr[u + 1]].tolist() == [40]
