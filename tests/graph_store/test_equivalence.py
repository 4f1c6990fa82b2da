"""Same data + same seed => the embedded and the Bolt store give the same answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graph_store.memory import MemoryGraphStore
from graph_store.types import CandidateParams, ChainParams
from tests.graph_store.conftest import StoreFactory

pytestmark = pytest.mark.asyncio


def random_frames(seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """40 users x 60 items, skewed popularity, coarse timestamps (many ties), re-watches."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, 61)
    rows = []
    for u in range(40):
        for i in rng.choice(
            60, size=int(rng.integers(3, 25)), replace=False, p=weights / weights.sum()
        ):
            rows.append((f"u{u}", f"i{i}", int(rng.integers(0, 30)), float(rng.integers(1, 6))))
    for uid, iid, t, r in rows[::17]:
        rows.append((uid, iid, t + 5, r))  # same pair later: a second edge
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    items = pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(60)],
            "title": [f"Film {k}" for k in range(60)],
            "genres": ["Drama" if k % 2 else "Comedy" for k in range(60)],
        }
    )
    return inter, items


async def test_memory_and_bolt_agree(backend: str, make_store: StoreFactory) -> None:
    if backend == "memory":
        pytest.skip("compares memory against a Bolt backend")
    inter, items = random_frames()
    mem = MemoryGraphStore.from_frames(inter, items)
    bolt = await make_store(inter, items)
    assert await mem.counts() == await bolt.counts()
    cparams = CandidateParams(window=8, max_neighbours=6)
    chain_params = [ChainParams(), ChainParams(window=6, max_neighbours=4, max_chains=3,
                                               next_per_neighbour=1)]  # fmt: skip
    restrict = {f"i{k}" for k in range(0, 60, 3)}
    n_chains = 0
    for user in [f"u{u}" for u in range(40)] + ["cold"]:
        assert await mem.history(user, 12) == await bolt.history(user, 12), user
        assert await mem.candidates(user, 10) == await bolt.candidates(user, 10), user
        assert await mem.candidates(user, 5, cparams) == await bolt.candidates(user, 5, cparams)
        assert await mem.candidates(user, 4, among=restrict) == await bolt.candidates(
            user, 4, among=restrict
        )
        for params in chain_params:
            for seed in (0, 1):
                chains = await mem.chains(user, params, seed)
                assert chains == await bolt.chains(user, params, seed), (user, params, seed)
                n_chains += len(chains)
            only = await mem.chains(user, params, 0, candidates=restrict)
            assert only == await bolt.chains(user, params, 0, candidates=restrict)
            assert all(c.next_item_id in restrict for c in only)
    assert n_chains > 100  # the comparison covered real chains, not empty lists
