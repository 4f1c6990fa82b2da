"""Random and Popularity rankers, and the registry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from baselines import BASELINE_NAMES, make_baseline
from baselines.common import NotFittedError
from baselines.simple import PopularityRanker, RandomConfig, RandomRanker
from evaluation.ranker import Case, Ranker
from tests.baselines.synthetic import cyclic_log, items_frame, ring_case


def test_registry_order_and_protocol() -> None:
    assert BASELINE_NAMES == (
        "random",
        "popularity",
        "itemknn",
        "bpr",
        "sasrec",
        "graph-paths",
        "graph-fallback",
    )
    for name in BASELINE_NAMES:
        ranker = make_baseline(name)
        assert isinstance(ranker, Ranker)
        assert ranker.name == name and ranker.generative is False


def test_registry_rejects_unknown_names_and_options() -> None:
    with pytest.raises(ValueError, match="unknown baseline 'nope'"):
        make_baseline("nope")
    with pytest.raises(ValueError, match="neighbors"):
        make_baseline("itemknn", neighbors=5)
    assert make_baseline("itemknn", neighbours=7).config.neighbours == 7  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", BASELINE_NAMES)
def test_rank_before_fit_raises(name: str) -> None:
    with pytest.raises(NotFittedError):
        make_baseline(name).rank([ring_case("u0", 0)])


def test_random_is_seeded_and_shaped() -> None:
    train, items = cyclic_log(20), items_frame(60)
    cases = [ring_case(f"u{i}", i) for i in range(7)]
    a, b, c = (RandomRanker(RandomConfig(seed=s)) for s in (1, 1, 2))
    for r in (a, b, c):
        r.fit(train, items)
    ra = a.rank(cases)
    assert ra.scores.shape == (7, 20) and ra.valid.all()
    np.testing.assert_array_equal(ra.scores, b.rank(cases).scores)
    np.testing.assert_array_equal(ra.scores, a.rank(cases).scores)
    assert not np.array_equal(ra.scores, c.rank(cases).scores)


def test_popularity_puts_most_interacted_item_first() -> None:
    rows = [(f"u{u}", "7", u) for u in range(10)] + [(f"u{u}", "3", u) for u in range(4)]
    rows += [("u0", "5", 100)]
    train = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    ranker = PopularityRanker()
    ranker.fit(train, items_frame(10))
    case = Case("new-user", "7", (), ("3", "5", "7", "0", "not-in-catalog"))
    scores = ranker.rank([case]).scores[0]
    assert np.argsort(-scores).tolist() == [2, 0, 1, 3, 4]
    assert ranker.counts["7"] == 10 and ranker.counts["0"] == 0


def test_empty_case_list_gives_empty_result() -> None:
    ranker = PopularityRanker()
    ranker.fit(cyclic_log(5), items_frame(60))
    assert ranker.rank([]).scores.shape[0] == 0
