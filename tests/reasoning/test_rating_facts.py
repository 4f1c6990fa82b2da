"""Out-of-sample rating facts (`reasoning.rating_facts`): hand-computed values, no target
leak (the target's rating changes nothing, whether or not the log holds it), and the
prompt gains one facts line only when facts are given."""

from __future__ import annotations

import pandas as pd
import pytest

from reasoning.prompt import ItemInfo
from reasoning.rating import RatedItem, render_rating_prompt
from reasoning.rating_facts import (
    describe_facts,
    rating_facts,
    taste_graph,
    taste_neighbours,
)


def _log(target_rating: float | None) -> pd.DataFrame:
    """u rated a 5, b 3, c 4; v, w share a, b, c and rated t; x rated t, shares nothing;
    with ``target_rating``, the log also holds u's rating of t (a training-row log)."""
    rows: list[tuple[str, str, float, int]] = [("u", "a", 5, 1), ("u", "b", 3, 2), ("u", "c", 4, 3)]
    rows += [("v", i, 4, k) for k, i in enumerate("abct")]
    rows += [("w", i, 2, k) for k, i in enumerate("abct")]
    rows += [("x", "t", 5, 1), ("x", "z", 1, 2)]
    if target_rating is not None:
        rows.append(("u", "t", target_rating, 9))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


def _facts(log: pd.DataFrame):
    near = taste_neighbours(taste_graph(log), "u", "t")
    return near, rating_facts(log, "u", "t", near)


def test_facts_match_a_hand_computed_log() -> None:
    near, facts = _facts(_log(None))
    assert near == ("v", "w")  # x shares no item with u
    assert facts.user_mean == pytest.approx(4.0) and facts.user_count == 3
    assert facts.user_spread == pytest.approx((2 / 3) ** 0.5)
    assert facts.item_mean == pytest.approx(11 / 3) and facts.item_count == 3
    assert facts.neighbour_mean == pytest.approx(3.0) and facts.neighbour_count == 2
    unknown = rating_facts(_log(None), "new", "nothing", ())
    assert unknown.user_mean is None and unknown.item_mean is None
    assert "the user has no other rating" in describe_facts(unknown)


@pytest.mark.parametrize("rating", [1.0, 3.0, 5.0])
def test_the_target_rating_never_changes_a_fact(rating: float) -> None:
    assert _facts(_log(rating)) == _facts(_log(1.0))
    # the target rating is not in an evaluation log at all: the facts are those
    near, facts = _facts(_log(None))
    held_near, held = _facts(_log(rating))
    assert held.item_mean == facts.item_mean and held.neighbour_mean == facts.neighbour_mean
    assert held.user_mean == facts.user_mean and held.user_spread == facts.user_spread
    assert held_near == near


def test_the_prompt_shows_the_facts_only_when_given() -> None:
    history = [RatedItem(ItemInfo("a", "Alpha", "1995", "Drama"), 5.0)]
    target = ItemInfo("t", "Target", "1996", "Comedy")
    plain = render_rating_prompt(history, target)
    facts = _facts(_log(None))[1]
    with_facts = render_rating_prompt(history, target, facts)
    assert "Facts from earlier ratings" not in plain
    line = describe_facts(facts)
    # the facts line sits right after the target line; nothing else changes
    assert with_facts == plain.replace("\n\nAnalyse", f"\n{line}\n\nAnalyse")
