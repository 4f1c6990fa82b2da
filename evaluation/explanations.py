"""Explanation quality as numbers: are the thoughts grounded, varied and consistent?

Three checks per explained response (``r2rec eval --model llm --explain`` reports them):

- **grounded titles**: every title the thoughts quote ("...") should be one the prompt
  showed (history, chains, candidates). Matching is `reasoning.rewards.is_known_title`,
  the same rule the GRPO grounding reward uses. Reported as the share of all quoted
  titles, over all responses.
- **repeated thought**: a response repeats itself when two of its thoughts are the same
  text (case, spacing and punctuation ignored). Reported as the share of responses.
- **pick agreement**: the explanation's first pick is the first candidate its thoughts
  name, by letter ``(C)`` or by quoting the candidate's title; it agrees when that is the
  item the response ranks first. Responses that name no candidate do not agree.

    check = check_explanation(thoughts, shown_titles, candidates, top_id)
    summary = summarise_checks([check, ...])
    summary["grounded titles"], summary["repeated thought"], summary["pick agreement"]

>>> c = check_explanation(
...     ['You watched "Heat".', '"Heat" fans went on to "Casino" (B).'],
...     ["Heat", "Alien", "Casino"],
...     [("a", "Alien"), ("b", "Casino")],
...     top_id="b",
... )
>>> (c.quoted, c.grounded, c.repeated, c.pick, c.agrees)
(3, 3, False, 'b', True)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from reasoning.prompt import LETTERS
from reasoning.rewards import (
    has_repeat,
    is_known_title,
    normalize_title,
    title_keys,
    title_mentions,
)

SUMMARY_COLUMNS = ("grounded titles", "repeated thought", "pick agreement", "explained")

_LETTER_REF = re.compile(r"\(([A-T])\)")
_QUOTED = re.compile(r"\"([^\"]{1,300})\"|\u201c([^\u201d]{1,300})\u201d")


@dataclass(frozen=True)
class ExplanationCheck:
    """The three checks for one response (see the module docstring)."""

    quoted: int  # titles quoted in the thoughts
    grounded: int  # of those, titles the prompt showed
    repeated: bool  # two thoughts with the same text
    pick: str | None  # the first candidate the thoughts name (id), if any
    agrees: bool  # pick == the response's top item
    thoughts: int  # number of thoughts


def first_pick(thoughts: Sequence[str], candidates: Sequence[tuple[str, str]]) -> str | None:
    """The first candidate (id) the thoughts name, by letter label or quoted title.

    ``candidates`` are (id, title) in letter order A, B, C, ...

    >>> first_pick(['You liked "Heat".', 'So "Alien" or (A)'], [("x", "Casino"), ("y", "Alien")])
    'y'
    """
    letters = {LETTERS[i]: cid for i, (cid, _) in enumerate(candidates)}
    keys = {normalize_title(title): cid for cid, title in candidates if normalize_title(title)}
    for thought in thoughts:
        found: list[tuple[int, str]] = []
        for m in _LETTER_REF.finditer(thought):
            if m.group(1) in letters:
                found.append((m.start(), letters[m.group(1)]))
        for m in _QUOTED.finditer(thought):
            title = (m.group(1) or m.group(2)).strip()
            for key, cid in keys.items():
                if is_known_title(title, [key]):
                    found.append((m.start(), cid))
                    break
        if found:
            return min(found)[1]
    return None


def check_explanation(
    thoughts: Sequence[str],
    shown_titles: Sequence[str],
    candidates: Sequence[tuple[str, str]],
    top_id: str,
) -> ExplanationCheck:
    """Check one response's thoughts against what its prompt showed and what it ranked."""
    known = title_keys(shown_titles)
    mentions = [m for t in thoughts for m in title_mentions(t)]
    pick = first_pick(thoughts, candidates)
    return ExplanationCheck(
        quoted=len(mentions),
        grounded=sum(is_known_title(m, known) for m in mentions),
        repeated=has_repeat(thoughts),
        pick=pick,
        agrees=pick is not None and pick == top_id,
        thoughts=len(thoughts),
    )


def summarise_checks(checks: Sequence[ExplanationCheck]) -> dict[str, float]:
    """Shares over the responses: grounded titles (of all quoted titles; 1.0 when none
    was quoted), repeated thought, pick agreement, and explained (at least one thought).

    >>> summarise_checks([ExplanationCheck(4, 3, True, "a", True, 2)])["grounded titles"]
    0.75
    """
    n = len(checks)
    quoted = sum(c.quoted for c in checks)
    return {
        "grounded titles": sum(c.grounded for c in checks) / quoted if quoted else 1.0,
        "repeated thought": sum(c.repeated for c in checks) / n if n else 0.0,
        "pick agreement": sum(c.agrees for c in checks) / n if n else 0.0,
        "explained": sum(c.thoughts > 0 for c in checks) / n if n else 0.0,
    }
