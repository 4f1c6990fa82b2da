"""Out-of-sample facts for one rating target: what the prompt may say about a (user, item).

    index = taste_graph(log)                                   # once per training log
    near = taste_neighbours(index, "42", "7")                  # who shares the user's taste
    facts = rating_facts(log, "42", "7", near)                 # RatingFacts(...)
    describe_facts(facts)                                      # one line for the prompt

Everything comes from a training log (a frame with ``user_id``, ``item_id``, ``rating``;
for evaluation, `evaluation.rating.rated_log`: everything before the split's targets)
and never from the target's own rating: `rating_facts` drops every row of the target
(user, item) pair before it reads anything, so the facts are the same whatever the
target rating is, even when the log holds it (training rows cut from the same log).

- the user: mean, spread (population standard deviation) and count of their ratings;
- the item: mean and count of the other users' ratings;
- taste neighbours: the users sharing most of the user's recent items in the interaction
  graph (`graph_store.index.GraphIndex.neighbours`, the same rule the recommender's
  chains use, restricted to users who interacted with the item; the graph holds no
  ratings), and the mean and count of their ratings of the item.

Worked example (the user u rated a: 5, b: 3; v and w share a and b with u and rated the
target t 4 and 2; x rated t 5 but shares nothing with u)::

    >>> import pandas as pd
    >>> log = pd.DataFrame({
    ...     "user_id": ["u", "u", "v", "v", "v", "w", "w", "w", "x"],
    ...     "item_id": ["a", "b", "a", "b", "t", "a", "b", "t", "t"],
    ...     "rating": [5.0, 3.0, 4.0, 4.0, 4.0, 2.0, 3.0, 2.0, 5.0],
    ...     "timestamp": [1, 2, 1, 2, 3, 1, 2, 3, 1]})
    >>> near = taste_neighbours(taste_graph(log), "u", "t")
    >>> near
    ('v', 'w')
    >>> facts = rating_facts(log, "u", "t", near)
    >>> (facts.user_mean, facts.user_spread, facts.item_mean, facts.item_count)
    (4.0, 1.0, 3.6666666666666665, 3)
    >>> (facts.neighbour_mean, facts.neighbour_count)
    (3.0, 2)
    >>> describe_facts(facts)
    'Facts from earlier ratings: the user rates 4.0/5 on average (spread 1.0, 2 ratings); \
the item averages 3.7/5 (3 ratings); 2 users with similar taste rated it 3.0/5 on average.'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from graph_store.index import GraphIndex
from graph_store.types import RatingEvidence, TasteParams

TASTE = TasteParams()  # window 50, min overlap 2, 20 neighbours: who shares the user's taste


@dataclass(frozen=True)
class RatingFacts:
    """What the log says about a (user, item) target, without the target's rating."""

    user_mean: float | None  # None: the user has no other rating
    user_spread: float | None  # population standard deviation of those ratings
    user_count: int
    item_mean: float | None  # other users' mean rating of the item; None: nobody
    item_count: int
    neighbour_mean: float | None  # the taste neighbours' mean rating of the item
    neighbour_count: int  # taste neighbours who rated the item


def taste_graph(log: pd.DataFrame) -> GraphIndex:
    """The interaction graph of a log (who interacted with what, when; no ratings)."""
    return GraphIndex.from_edges(
        log["user_id"].astype(str).to_numpy(),
        log["item_id"].astype(str).to_numpy(),
        log["timestamp"].to_numpy(np.int64),
    )


def taste_neighbours(
    index: GraphIndex, user_id: str, item_id: str, taste: TasteParams = TASTE
) -> tuple[str, ...]:
    """Up to ``taste.k`` users who share >= ``taste.min_overlap`` of the user's
    ``taste.window`` most recent items and interacted with ``item_id`` (overlap desc, then
    id): `GraphIndex.neighbours`, as a graph store's `rating_evidence` picks them."""
    found = index.neighbours(user_id, taste.window, taste.min_overlap, taste.k, [item_id])
    return tuple(user for user, _ in found)


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def rating_facts(
    log: pd.DataFrame, user_id: str, item_id: str, neighbours: Sequence[str]
) -> RatingFacts:
    """The target's facts from ``log`` minus every row of the (user, item) pair itself."""
    users, items = log["user_id"].astype(str), log["item_id"].astype(str)
    rated = log["rating"].notna() & ~((users == user_id) & (items == item_id))
    ratings = log["rating"].to_numpy(np.float64)
    own = ratings[(rated & (users == user_id)).to_numpy()]
    of_item = rated & (items == item_id) & (users != user_id)
    by_others = ratings[of_item.to_numpy()]
    by_near = ratings[(of_item & users.isin(set(neighbours))).to_numpy()]
    return _facts(own, by_others, by_near)


def facts_from_evidence(evidence: RatingEvidence) -> RatingFacts:
    """The same facts from what a graph store says about the pair (what the service
    reads: `graph_store.base.GraphStoreBase.rating_evidence`, whose item ratings are the
    item's kept raters' latest ones).

    >>> from graph_store.types import RatingEvidence
    >>> facts = facts_from_evidence(RatingEvidence((5.0, 3.0), (("v", 4.0), ("x", 5.0)), ("v",)))
    >>> (facts.user_mean, facts.item_mean, facts.item_count, facts.neighbour_mean)
    (4.0, 4.5, 2, 4.0)
    """
    near = set(evidence.neighbours)
    return _facts(
        np.array(evidence.user_ratings, dtype=np.float64),
        np.array([r for _, r in evidence.item_ratings], dtype=np.float64),
        np.array([r for v, r in evidence.item_ratings if v in near], dtype=np.float64),
    )


def _facts(own: np.ndarray, by_others: np.ndarray, by_near: np.ndarray) -> RatingFacts:
    return RatingFacts(
        user_mean=_mean(own),
        user_spread=float(own.std()) if len(own) else None,
        user_count=len(own),
        item_mean=_mean(by_others),
        item_count=len(by_others),
        neighbour_mean=_mean(by_near),
        neighbour_count=len(by_near),
    )


def _ratings(n: int) -> str:
    return f"{n} rating{'s' if n != 1 else ''}"


def describe_facts(facts: RatingFacts) -> str:
    """The facts as one prompt line (numbers to one decimal)."""
    if facts.user_mean is None or facts.user_spread is None:
        user = "the user has no other rating"
    else:
        user = (
            f"the user rates {facts.user_mean:.1f}/5 on average "
            f"(spread {facts.user_spread:.1f}, {_ratings(facts.user_count)})"
        )
    item = (
        "nobody else rated the item"
        if facts.item_mean is None
        else f"the item averages {facts.item_mean:.1f}/5 ({_ratings(facts.item_count)})"
    )
    if facts.neighbour_mean is None:
        near = "no user with similar taste rated it"
    else:
        who = "user" if facts.neighbour_count == 1 else "users"
        near = (
            f"{facts.neighbour_count} {who} with similar taste rated it "
            f"{facts.neighbour_mean:.1f}/5 on average"
        )
    return f"Facts from earlier ratings: {user}; {item}; {near}."
