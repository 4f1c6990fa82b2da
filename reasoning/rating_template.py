"""The rating head's grounded reasoning: three analysis steps written from facts, not generated.

RecOne's cold start and the rating head (`training.rating.head`) train on this text, and
the service writes the same text before reading the rating (`reasoning.rater.rate_after_template`),
so the model reads at serving exactly what it was trained on. Every fact is from the
prompt (the rated history shown) or from other users (the item's mean and count):

- analyse_user: the history's mean rating and its liked genres (mean rating >= 4) and
  disliked ones (<= 2.5), at most 3 each, the most frequent first;
- analyse_item: the target's title, year and genres, and other users' mean rating of it;
- match: which liked/disliked genres the item has, and the estimate the two means give.

    facts = completion_facts(history, item_mean=3.9, item_count=120)
    prefix = template_prefix(facts, target, len(history))   # "<analyse_user>...<rate>"
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reasoning.prompt import ItemInfo, clean_title
from reasoning.rating import RATING_MAX, RATING_MIN, RatedItem, render_rating_completion

LIKED_AT = 4.0
DISLIKED_AT = 2.5
MAX_GENRES = 3
RATE_OPEN = "<rate>"
# A published rating model's card (`training.rating.publish` writes it, the service reads
# it) and the reading it declares: these steps written, then the rating read after them.
RATING_CARD = "rating-card.json"
HEAD_READING = "template"


def genres_of(info: ItemInfo) -> list[str]:
    """The item's genre names, without ML-100K's placeholder "unknown"."""
    parts = [g.strip() for g in str(info.genres).split("|")]
    return [g for g in parts if g and g.lower() not in ("unknown", "nan", "(no genres listed)")]


@dataclass(frozen=True)
class Facts:
    """What a cold-start completion says; all from the prompt or from other users."""

    user_mean: float
    liked: tuple[str, ...]
    disliked: tuple[str, ...]
    item_mean: float | None  # other users' mean rating of the target; None when nobody
    item_count: int


def completion_facts(
    history: Sequence[RatedItem], item_mean: float | None, item_count: int
) -> Facts:
    """The user's mean and liked/disliked genres from the rated history shown."""
    if not history:
        raise ValueError("a cold-start completion needs a rated history")
    by_genre: dict[str, list[float]] = defaultdict(list)
    for entry in history:
        for genre in genres_of(entry.item):
            by_genre[genre].append(entry.rating)
    means = {g: (float(np.mean(v)), len(v)) for g, v in by_genre.items()}
    liked = sorted(
        (g for g, (m, _) in means.items() if m >= LIKED_AT),
        key=lambda g: (-means[g][1], -means[g][0], g),
    )
    disliked = sorted(
        (g for g, (m, _) in means.items() if m <= DISLIKED_AT),
        key=lambda g: (-means[g][1], means[g][0], g),
    )
    return Facts(
        user_mean=float(np.mean([e.rating for e in history])),
        liked=tuple(liked[:MAX_GENRES]),
        disliked=tuple(disliked[:MAX_GENRES]),
        item_mean=item_mean,
        item_count=item_count,
    )


def _names(genres: Sequence[str]) -> str:
    return ", ".join(genres) if genres else "none stands out"


def cold_start_completion(facts: Facts, target: ItemInfo, history_len: int, rating: float) -> str:
    """The template completion of one example (see the module docstring)."""
    user = (
        f"The user's ratings average {facts.user_mean:.1f}/5 over {history_len} items. "
        f"Liked genres: {_names(facts.liked)}. Disliked genres: {_names(facts.disliked)}."
    )
    genres = genres_of(target)
    what = f'"{clean_title(target.title)}"' + (f" ({target.year})" if target.year else "")
    item = f"{what} is {', '.join(genres) if genres else 'of unknown genre'}. "
    if facts.item_mean is None:
        item += "No other user has rated it."
    else:
        plural = "s" if facts.item_count != 1 else ""
        item += (
            f"Other users rate it {facts.item_mean:.1f}/5 on average "
            f"({facts.item_count} rating{plural})."
        )
    likes = ", ".join(g for g in genres if g in facts.liked)
    dislikes = ", ".join(g for g in genres if g in facts.disliked)
    if likes and dislikes:
        match = (
            f"It has {likes}, which the user likes, but also {dislikes}, which the user dislikes."
        )
    elif likes:
        match = f"It has {likes}, which the user likes."
    elif dislikes:
        match = f"It has {dislikes}, which the user dislikes."
    else:
        match = "None of its genres is among the user's liked or disliked ones."
    means = [facts.user_mean] + ([facts.item_mean] if facts.item_mean is not None else [])
    match += f" The averages suggest about {float(np.mean(means)):.1f}."
    shown = min(max(rating, RATING_MIN), RATING_MAX)
    return render_rating_completion(user, item, match, shown)


def template_prefix(facts: Facts, target: ItemInfo, history_len: int) -> str:
    """The completion up to and including ``<rate>``: where the model writes the rating."""
    text = cold_start_completion(facts, target, history_len, 3.0)  # the rating is cut off
    return text[: text.index(RATE_OPEN) + len(RATE_OPEN)]
