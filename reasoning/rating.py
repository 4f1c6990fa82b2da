"""The RecZero / RecOne rating format: think in four tagged steps, then rate 1-5.

Prompt: the fixed `RATING_SYSTEM_PROMPT` first, then a user message with the user's rated
history (oldest to newest), the target item and, when given, its out-of-sample facts
(`render_rating_messages(history, target, facts)`; `reasoning.rating_facts`). Titles go
through `reasoning.prompt.clean_title`, which removes angle brackets, so no title can pose
as a tag.

Completion grammar (`render_rating_completion` writes it, `parse_rating` reads it)::

    <analyse_user>TEXT</analyse_user>
    <analyse_item>TEXT</analyse_item>
    <match>TEXT</match>
    <rate>R</rate>            R: a number from 1 to 5, e.g. 4 or 3.5

`parse_rating` never raises on model output. ``valid`` needs all four tags, in this
order, each non-empty, and a ``<rate>`` block holding only a number in [1, 5] (optionally
"/5"). ``rating`` is read even from an invalid completion when its ``<rate>`` block (closed
or cut off at the end) starts with a number in [1, 5]; otherwise it is None.

    msgs = render_rating_messages(rated_history, target_item)
    parsed = parse_rating(completion)       # ParsedRating(rating=4.0, valid=True, ...)
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from reasoning.prompt import ItemInfo, clean_thought, describe_item
from reasoning.rating_facts import RatingFacts, describe_facts

HISTORY_SIZE = 10  # rated items a prompt shows (the training data's default history_size)
RATING_MIN = 1.0
RATING_MAX = 5.0
STEP_TAGS: tuple[str, ...] = ("analyse_user", "analyse_item", "match", "rate")
STEP_MAX_CHARS = 600
MAX_PARSE_CHARS = 50_000

RATING_SYSTEM_PROMPT = (
    "You predict how much a user will like an item, on a scale from 1 to 5.\n"
    "You get the user's rated history (oldest to newest) and one target item.\n"
    "Answer in exactly four tagged steps, in this order:\n"
    "<analyse_user>what the user likes and dislikes, from the ratings</analyse_user>\n"
    "<analyse_item>what the target item is and who tends to like it</analyse_item>\n"
    "<match>how well the item fits the user</match>\n"
    "<rate>a number from 1 to 5</rate>"
)


@dataclass(frozen=True)
class RatedItem:
    """One history entry: the item and the user's rating of it."""

    item: ItemInfo
    rating: float


@dataclass(frozen=True)
class ParsedRating:
    """A parsed rating completion: the rating (1-5 or None), validity, the step texts.

    ``reason`` is "ok" or a "; "-joined list of problems.
    """

    rating: float | None
    valid: bool
    steps: dict[str, str] = field(default_factory=dict)
    reason: str = "ok"


def _format_rating(value: float) -> str:
    return f"{value:g}"


def render_rating_prompt(
    history: Sequence[RatedItem], target: ItemInfo, facts: RatingFacts | None = None
) -> str:
    """The user message: rated history lines, then the target item, its out-of-sample
    facts when given (`reasoning.rating_facts.describe_facts`), and the instruction."""
    lines = ["Rated history (oldest to newest):"]
    for entry in history:
        if not math.isfinite(entry.rating):
            raise ValueError(f"history rating of {entry.item.item_id!r} is not a number")
        lines.append(f"- {describe_item(entry.item)}: {_format_rating(entry.rating)}/5")
    if not history:
        lines.append("- (none)")
    lines += [
        "",
        f"Target item: {describe_item(target)}",
        *([describe_facts(facts)] if facts is not None else []),
        "",
        "Analyse the user, analyse the item, match them, then rate from 1 to 5.",
    ]
    return "\n".join(lines)


def render_rating_messages(
    history: Sequence[RatedItem], target: ItemInfo, facts: RatingFacts | None = None
) -> list[dict[str, str]]:
    """OpenAI chat messages: the fixed rating system prompt, then the user message."""
    return [
        {"role": "system", "content": RATING_SYSTEM_PROMPT},
        {"role": "user", "content": render_rating_prompt(history, target, facts)},
    ]


def render_rating_completion(
    user_analysis: str, item_analysis: str, match: str, rating: float
) -> str:
    """A complete target completion (RecOne's SFT cold start); step texts are sanitised.

    >>> render_rating_completion("Likes drama.", "A drama.", "Good fit.", 4)
    '<analyse_user>Likes drama.</analyse_user>\\n<analyse_item>A drama.</analyse_item>\\n\
<match>Good fit.</match>\\n<rate>4</rate>'
    """
    if not (math.isfinite(rating) and RATING_MIN <= rating <= RATING_MAX):
        raise ValueError(f"rating must be in [{RATING_MIN:g}, {RATING_MAX:g}], got {rating!r}")
    texts = [clean_thought(t, STEP_MAX_CHARS) for t in (user_analysis, item_analysis, match)]
    empty = [tag for tag, t in zip(STEP_TAGS, texts, strict=False) if not t]
    if empty:
        raise ValueError(f"empty step text for {empty}")
    texts.append(_format_rating(rating))
    return "\n".join(f"<{tag}>{t}</{tag}>" for tag, t in zip(STEP_TAGS, texts, strict=True))


_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_PLAIN_RATING = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*5)?\s*")


def _block(text: str, tag: str) -> tuple[int, str | None, bool]:
    """(start, content, closed) of the first ``<tag>`` block; start -1 when absent."""
    opening = f"<{tag}>"
    start = text.find(opening)
    if start < 0:
        return -1, None, False
    body_start = start + len(opening)
    end = text.find(f"</{tag}>", body_start)
    if end < 0:
        return start, text[body_start:], False
    return start, text[body_start:end], True


def _read_rating(content: str | None) -> tuple[float | None, bool]:
    """(rating, plain): the leading number if in range; plain when it is all there is."""
    if content is None:
        return None, False
    head = _NUMBER.search(content[:40])
    if head is None:
        return None, False
    value = float(head.group(0))
    if not RATING_MIN <= value <= RATING_MAX:
        return None, False
    return value, _PLAIN_RATING.fullmatch(content) is not None


def parse_rating(text: str) -> ParsedRating:
    """Parse a rating completion; never raises (see the module docstring).

    >>> parse_rating("<analyse_user>a</analyse_user><analyse_item>b</analyse_item>"
    ...              "<match>c</match><rate>4.5</rate>").rating
    4.5
    >>> parse_rating("I would say <rate>7</rate>")
    ParsedRating(rating=None, valid=False, steps={}, reason='missing analyse_user; \
missing analyse_item; missing match; rating missing or outside 1-5')
    """
    raw = (text if isinstance(text, str) else "")[:MAX_PARSE_CHARS]
    problems: list[str] = []
    steps: dict[str, str] = {}
    last_start = -1
    rate_content: str | None = None
    for tag in STEP_TAGS:
        start, content, closed = _block(raw, tag)
        if start < 0 or content is None:
            problems.append(f"missing {tag}")
            continue
        if tag == "rate":
            rate_content = content
        if not closed:
            problems.append(f"unclosed {tag}")
        if not content.strip():
            problems.append(f"empty {tag}")
        if start < last_start:
            problems.append(f"{tag} out of order")
        last_start = max(last_start, start)
        if tag != "rate":
            steps[tag] = content.strip()[:STEP_MAX_CHARS]
    rating, plain = _read_rating(rate_content)
    if rating is None:
        problems.append("rating missing or outside 1-5")
    elif not plain:
        problems.append("rate block holds more than a number")
    return ParsedRating(
        rating=rating, valid=not problems, steps=steps, reason="; ".join(problems) or "ok"
    )
