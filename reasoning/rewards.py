"""Rule-based rewards for GRPO, shared by training and evaluation; pure functions.

Every reward has TRL's signature, ``reward(completions, **kwargs) -> list[float]``:
``completions`` are plain strings or chat completions (lists of ``{"role", "content"}``
messages; the assistant messages' contents are joined), and dataset columns arrive as
keyword arguments, one value per completion. Columns used here:

- ``candidates``: the candidate item ids, in letter order (A, B, ...);
- ``target``: the held-out item id;
- ``evidence_titles``: every title the prompt showed (`reasoning.prompt.evidence_titles`);
- ``rating``: the true rating (rating rewards).

Unknown keyword arguments (TRL also passes ``prompts``, ``completion_ids``, ...) are
ignored. Rewards for the ranking format read completions with `reasoning.parse`, those
for the rating format with `reasoning.rating`. Combine them with `make_combined_reward`
(or TRL's own ``reward_weights``).

    trainer = GRPOTrainer(..., reward_funcs=[format_reward, rank_reward, grounding_reward])
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from difflib import SequenceMatcher
from typing import Any

from reasoning.parse import parse_ranking, parse_thoughts
from reasoning.prompt import clean_title
from reasoning.rating import RATING_MAX, RATING_MIN, parse_rating

Completion = str | Sequence[Mapping[str, Any]]
RewardFunc = Callable[..., list[float]]

FUZZY_TITLE_RATIO = 0.9


def completion_text(completion: Completion) -> str:
    """The text of one completion: a string as is, or the assistant messages' contents."""
    if isinstance(completion, str):
        return completion
    parts: list[str] = []
    for message in completion:
        if not isinstance(message, Mapping):
            raise TypeError(f"a chat completion holds messages (dicts), got {type(message)}")
        if message.get("role", "assistant") != "assistant":
            continue
        content = message.get("content") or ""
        if isinstance(content, str):
            parts.append(content)
        else:  # content parts: [{"type": "text", "text": ...}]
            parts += [p.get("text") or "" for p in content if isinstance(p, Mapping)]
    return "".join(parts)


def _texts(completions: Sequence[Completion], **columns: Sequence[Any]) -> list[str]:
    for name, values in columns.items():
        if len(values) != len(completions):
            raise ValueError(
                f"column {name!r} has {len(values)} values for {len(completions)} completions"
            )
    return [completion_text(c) for c in completions]


def format_reward(
    completions: Sequence[Completion],
    *,
    candidates: Sequence[Sequence[str]],
    min_thoughts: int = 1,
    **kwargs: Any,
) -> list[float]:
    """How well a completion follows the ranking format, in {0, 0.5, 0.75, 1}.

    0 when no valid answer line (missing, unknown or repeated letters, malformed tokens);
    otherwise 0.5, plus 0.25 when every candidate is ranked, plus 0.25 when the text is
    exactly the rendered form (numbered thoughts 1..k, k >= ``min_thoughts``, then a last
    line ``Answer: C > A`` in canonical spacing).

    Worked example, candidates ["a", "b"]: "1. x\\nAnswer: B > A" -> 1.0;
    "Answer: B > A" -> 0.75 (no thought); "1. x\\nAnswer: B" -> 0.75 (partial);
    "1. x\\nAnswer: b, a" -> 0.75 (loose form); "Answer: B > B" -> 0.0 (repeat).
    """
    texts = _texts(completions, candidates=candidates)
    rewards = []
    for text, cands in zip(texts, candidates, strict=True):
        parsed = parse_ranking(text, cands)
        if not parsed.valid:
            rewards.append(0.0)
            continue
        exact = parsed.strict and len(parsed.thoughts) >= min_thoughts
        rewards.append(0.5 + 0.25 * parsed.complete + 0.25 * exact)
    return rewards


def hit_at_1_reward(
    completions: Sequence[Completion],
    *,
    candidates: Sequence[Sequence[str]],
    target: Sequence[str],
    **kwargs: Any,
) -> list[float]:
    """1.0 when a valid answer ranks the target first, else 0.0 (fallbacks earn nothing).

    Worked example, candidates ["a", "b", "c"], target "c": "Answer: C > A > B" -> 1.0;
    "Answer: A > C > B" -> 0.0; "Answer: C > C" -> 0.0 (invalid).
    """
    texts = _texts(completions, candidates=candidates, target=target)
    rewards = []
    for text, cands, tgt in zip(texts, candidates, target, strict=True):
        parsed = parse_ranking(text, cands)
        hit = parsed.valid and bool(parsed.stated_ids) and parsed.stated_ids[0] == tgt
        rewards.append(1.0 if hit else 0.0)
    return rewards


def rank_reward(
    completions: Sequence[Completion],
    *,
    candidates: Sequence[Sequence[str]],
    target: Sequence[str],
    **kwargs: Any,
) -> list[float]:
    """1 / log2(rank + 2) for the target's 0-based rank in a valid answer (an NDCG gain).

    0.0 when the answer is invalid or does not state the target.
    Worked example, candidates ["a", "b", "c"], target "c": "Answer: C > A > B" -> 1.0;
    "Answer: A > B > C" -> 1/log2(4) = 0.5; "Answer: A > B" -> 0.0.
    """
    texts = _texts(completions, candidates=candidates, target=target)
    rewards = []
    for text, cands, tgt in zip(texts, candidates, target, strict=True):
        parsed = parse_ranking(text, cands)
        if parsed.valid and tgt in parsed.stated_ids:
            rewards.append(1.0 / math.log2(parsed.stated_ids.index(tgt) + 2))
        else:
            rewards.append(0.0)
    return rewards


def rating_reward(
    completions: Sequence[Completion], *, rating: Sequence[float], **kwargs: Any
) -> list[float]:
    """1 - |predicted - true| / 4, floored at 0, for a valid rating completion; else 0.

    Worked example, true rating 5: "<analyse_user>..</analyse_user><analyse_item>..
    </analyse_item><match>..</match><rate>4</rate>" -> 0.75; a rate of 1 -> 0.0; a
    completion without the four tags -> 0.0.
    """
    texts = _texts(completions, rating=rating)
    span = RATING_MAX - RATING_MIN
    rewards = []
    for text, true in zip(texts, rating, strict=True):
        true_value = float(true)
        if not math.isfinite(true_value):
            raise ValueError(f"rating_reward needs a true rating, got {true!r}")
        parsed = parse_rating(text)
        if not parsed.valid or parsed.rating is None:
            rewards.append(0.0)
            continue
        rewards.append(max(0.0, 1.0 - abs(parsed.rating - true_value) / span))
    return rewards


def rating_format_reward(completions: Sequence[Completion], **kwargs: Any) -> list[float]:
    """1.0 for a valid four-step rating completion, 0.5 when only a rating can be read, else 0.

    Worked example: the four tags in order with <rate>4</rate> -> 1.0; "<rate>4</rate>"
    alone -> 0.5; "4 stars" -> 0.0.
    """
    rewards = []
    for text in _texts(completions):
        parsed = parse_rating(text)
        rewards.append(1.0 if parsed.valid else 0.5 if parsed.rating is not None else 0.0)
    return rewards


# --- grounding -----------------------------------------------------------------------------

_MENTION = re.compile(r"\"([^\"\n]{1,200})\"|\u201c([^\u201c\u201d\n]{1,200})\u201d")
_TRAILING_YEAR = re.compile(r"\s*\(\s*\d{4}\s*\)\s*$")
_TRAILING_ARTICLE = re.compile(r"^(.*),\s*(the|a|an)$")
_LEADING_ARTICLE = re.compile(r"^(the|a|an)\s+")
_NON_WORD = re.compile(r"[\W_]+")


def normalize_title(title: str) -> str:
    """A comparison key: cleaned, case-folded, no year suffix, no article, words only.

    >>> normalize_title("Matrix, The (1999)") == normalize_title("the matrix")
    True
    """
    if not str(title).strip():
        return ""
    text = clean_title(title).removesuffix("...").casefold()
    text = _TRAILING_YEAR.sub("", unicodedata.normalize("NFKC", text)).strip()
    moved = _TRAILING_ARTICLE.match(text)
    if moved is not None:
        text = f"{moved.group(2)} {moved.group(1)}"
    text = _NON_WORD.sub(" ", text).strip()
    return _LEADING_ARTICLE.sub("", text)


def title_keys(titles: Sequence[str]) -> list[str]:
    """The distinct non-empty `normalize_title` keys of ``titles`` (what
    `is_known_title` compares a mention with)."""
    return list(dict.fromkeys(k for k in map(normalize_title, titles) if k))


def text_key(text: str) -> str:
    """A thought as compared with another: case-folded, words only, single spaces."""
    return _NON_WORD.sub(" ", text.casefold()).strip()


def has_repeat(thoughts: Sequence[str]) -> bool:
    """Whether two thoughts say the same thing (case, spaces and punctuation ignored).

    >>> has_repeat(['"Kingpin" (Chain 1)', '"kingpin"  (chain 1).'])
    True
    """
    keys = [k for k in map(text_key, thoughts) if k]
    return len(set(keys)) < len(keys)


def title_mentions(text: str) -> list[str]:
    """Titles a text mentions: every span in straight or curly double quotes."""
    return [(m.group(1) or m.group(2)).strip() for m in _MENTION.finditer(text)]


def is_known_title(mention: str, known_keys: Sequence[str]) -> bool:
    """Whether a mention names one of the known titles (keys from `normalize_title`).

    Equal keys match; otherwise a difflib similarity ratio >= `FUZZY_TITLE_RATIO` does
    (a typo or a dropped character in a long title).
    """
    key = normalize_title(mention)
    if not key:
        return False
    for known in known_keys:
        if key == known:
            return True
        matcher = SequenceMatcher(None, key, known, autojunk=False)
        if (
            matcher.real_quick_ratio() >= FUZZY_TITLE_RATIO
            and matcher.quick_ratio() >= FUZZY_TITLE_RATIO
            and matcher.ratio() >= FUZZY_TITLE_RATIO
        ):
            return True
    return False


def grounding_reward(
    completions: Sequence[Completion],
    *,
    evidence_titles: Sequence[Sequence[str]],
    **kwargs: Any,
) -> list[float]:
    """The share of title mentions in the thoughts that name a title the prompt showed.

    A mention is a span in double quotes (the format asks the model to quote exact
    titles); it is grounded when `is_known_title` finds it among ``evidence_titles``
    (history, chains and candidates). No thoughts, or thoughts without any mention, earn
    0.0: nothing is grounded. Unquoted titles are not detected.

    Worked example, evidence ["Heat (1995)", "Matrix, The", "Alien"]: thoughts
    '1. You watched "Heat" and "The Matrix".' -> 1.0; '1. "Heat" leads to "Titanic".'
    -> 0.5; '1. You like action.' -> 0.0.
    """
    texts = _texts(completions, evidence_titles=evidence_titles)
    rewards = []
    for text, titles in zip(texts, evidence_titles, strict=True):
        mentions = [m for t in parse_thoughts(text) for m in title_mentions(t)]
        if not mentions:
            rewards.append(0.0)
            continue
        keys = title_keys(titles)
        grounded = sum(is_known_title(m, keys) for m in mentions)
        rewards.append(grounded / len(mentions))
    return rewards
