"""Read a model completion in the interaction-of-thought format back into a ranking.

`parse_ranking` never raises on model output and never returns an item that was not a
candidate. It reads the grammar documented in `reasoning.prompt` (numbered thoughts, then
``Answer: C > A > ...``) leniently, and says exactly how far the output was from it:

- ``valid``: an answer line was found and every token in it is one in-range candidate
  letter, none repeated. Tolerated: any case; ``(C)``/``[C]``/``**C**`` wrappers; a note
  after the letter (``C: Heat``, ``C - Heat``, ``C ("Heat")``); "," or whitespace instead
  of " > ". Not tolerated: an empty token (a truncated ``C > A >``) or any other text.
- ``complete``: the model's own letters rank every candidate.
- ``strict``: valid, and the text is exactly the rendered form: only numbered thoughts
  1, 2, 3, ... before a last line ``Answer: C > A`` in canonical spacing.
- ``fallback_used``: ``ranked_ids`` holds anything the model did not state itself.

Fallback (documented and flagged): take the answer line's well-formed in-range letters in
order, drop repeats, then append the unranked candidates in their given order. With no
answer line (empty, truncated or endless output) the ranking is the candidates in their
given order. The last ``Answer:`` marker in the text wins; only the first
`MAX_PARSE_CHARS` characters are read. Callers of the explain=false mode prepend
`reasoning.prompt.ANSWER_PREFIX` to the generated continuation before parsing.

    parsed = parse_ranking(text, case.candidates)
    scores = ranking_scores(parsed)          # one float per candidate, higher = better
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from reasoning.prompt import ANSWER_PREFIX, ANSWER_SEPARATOR, LETTERS, MAX_CANDIDATES

MAX_PARSE_CHARS = 100_000
MAX_THOUGHTS = 64
MAX_THOUGHT_CHARS = 1_000
MAX_EXPLANATION_CHARS = 8_000

_ANSWER_MARK = re.compile(r"\banswer\s*\**\s*[:\uff1a]\**", re.IGNORECASE)
# A letter, optionally wrapped ("(C)", "[c]", "**C**"), optionally annotated after a dash
# or colon ("C: Heat") or by a bracketed/quoted note ('C ("Heat")').
_LETTER_TOKEN = re.compile(r"[(\[*]*\s*([A-Za-z])\s*[)\]*]*(?:\s*[-:\u2013]\s*.*|\s+[(\[\"'].*)?")
_NUMBERED = re.compile(r"\s*(\d{1,3})\s*[.)]\s*(.*)")


@dataclass(frozen=True)
class ParsedRanking:
    """What a completion says, plus how well-formed it was (see the module docstring).

    ``ranked_ids`` is always a permutation of ``candidate_ids`` (best first);
    ``stated_ids`` are the in-range letters the model itself wrote, as ids, without
    repeats; ``thoughts`` the numbered thoughts' texts (numbers removed);
    ``explanation`` the free text before the answer line (all text when there is none);
    ``reason`` is "ok" or a "; "-joined list of problems.
    """

    candidate_ids: tuple[str, ...]
    ranked_ids: tuple[str, ...]
    stated_ids: tuple[str, ...]
    thoughts: tuple[str, ...]
    explanation: str
    valid: bool
    complete: bool
    strict: bool
    fallback_used: bool
    reason: str

    @property
    def top(self) -> str:
        """The best-ranked candidate id (after fallback)."""
        return self.ranked_ids[0]


@dataclass(frozen=True)
class _Answer:
    letters: tuple[str, ...]
    problems: tuple[str, ...]
    canonical: bool


def parse_ranking(text: str, candidate_ids: Sequence[str]) -> ParsedRanking:
    """Parse ``text`` against ``candidate_ids`` (labelled A, B, ... in that order).

    Raises ValueError only for bad ``candidate_ids`` (none, more than 20, duplicates),
    which is a caller error; any model ``text`` parses.

    >>> p = parse_ranking("1. x\\nAnswer: B > A", ["a", "b"])
    >>> p.ranked_ids, p.valid, p.complete, p.strict
    (('b', 'a'), True, True, True)
    >>> p = parse_ranking("Answer: B > Z > B", ["a", "b", "c"])
    >>> p.ranked_ids, p.valid, p.reason
    (('b', 'a', 'c'), False, "unknown letter 'Z'; repeated letter 'B'; incomplete: 1 of 3")
    """
    candidates = tuple(candidate_ids)
    _check_candidates(candidates)
    raw = text if isinstance(text, str) else ""
    raw = raw[:MAX_PARSE_CHARS]
    marks = list(_ANSWER_MARK.finditer(raw))
    if not raw.strip():
        return _fallback(candidates, (), "", ["empty output"])
    if not marks:
        thoughts, _ = _thoughts(raw)
        return _fallback(candidates, thoughts, _bounded(raw), ["no answer line"])
    mark = marks[-1]
    before = raw[: mark.start()]
    line_end = raw.find("\n", mark.end())
    line_end = len(raw) if line_end < 0 else line_end
    answer = _read_answer(raw[mark.end() : line_end], len(candidates))
    thoughts, numbered_only = _thoughts(before)
    letter_ids = dict(zip(LETTERS, candidates, strict=False))
    stated = tuple(letter_ids[letter] for letter in answer.letters)
    problems = list(answer.problems)
    valid = not problems
    complete = len(stated) == len(candidates)
    if not complete:
        problems.append(f"incomplete: {len(stated)} of {len(candidates)}")
    at_line_start = raw[: mark.start()].endswith("\n") or mark.start() == 0
    strict = (
        valid
        and answer.canonical
        and at_line_start
        and raw[mark.start() : mark.end()] == ANSWER_PREFIX
        and not raw[line_end:].strip()
        and numbered_only
    )
    stated_set = set(stated)
    rest = tuple(c for c in candidates if c not in stated_set)
    return ParsedRanking(
        candidate_ids=candidates,
        ranked_ids=stated + rest,
        stated_ids=stated,
        thoughts=thoughts,
        explanation=_bounded(before),
        valid=valid,
        complete=complete,
        strict=strict,
        fallback_used=bool(problems),
        reason="; ".join(problems) or "ok",
    )


def parse_thoughts(text: str) -> tuple[str, ...]:
    """The numbered thoughts before the last ``Answer:`` marker (all text when none).

    >>> parse_thoughts('1. "Heat" and "Alien"\\n2. so C\\nAnswer: C')
    ('"Heat" and "Alien"', 'so C')
    """
    raw = (text if isinstance(text, str) else "")[:MAX_PARSE_CHARS]
    marks = list(_ANSWER_MARK.finditer(raw))
    before = raw[: marks[-1].start()] if marks else raw
    return _thoughts(before)[0]


def _read_answer(line: str, n_candidates: int) -> _Answer:
    """Tokenise the text after ``Answer:`` into letters; collect every problem found."""
    canonical = _is_canonical(line, n_candidates)
    content = line.strip().strip("*").strip().rstrip(".").strip()
    if not content:
        return _Answer((), ("empty answer",), False)
    if ">" in content:
        pieces = content.split(">")
    elif "," in content:
        pieces = content.split(",")
    else:
        pieces = content.split()
    letters: list[str] = []
    problems: list[str] = []
    for piece in (p.strip() for p in pieces):
        match = _LETTER_TOKEN.fullmatch(piece)
        if match is None:
            problems.append(f"malformed token {piece[:20]!r}" if piece else "empty token")
            continue
        letter = match.group(1).upper()
        if letter not in LETTERS[:n_candidates]:
            problems.append(f"unknown letter {letter!r}")
        elif letter in letters:
            problems.append(f"repeated letter {letter!r}")
        else:
            letters.append(letter)
    return _Answer(tuple(letters), tuple(dict.fromkeys(problems)), canonical)


def _is_canonical(line: str, n_candidates: int) -> bool:
    if not line.startswith(" "):
        return False
    letters = line[1:].split(ANSWER_SEPARATOR)
    in_range = LETTERS[:n_candidates]
    return all(len(x) == 1 and x in in_range for x in letters)


def _thoughts(before: str) -> tuple[tuple[str, ...], bool]:
    """Numbered thoughts (continuation lines joined) and whether the text is only those,
    numbered 1, 2, 3, ... in order."""
    thoughts: list[str] = []
    in_order = True
    for line in before.splitlines():
        if not line.strip():
            continue
        match = _NUMBERED.fullmatch(line)
        if match is not None and match.group(2).strip():
            in_order = in_order and int(match.group(1)) == len(thoughts) + 1
            thoughts.append(match.group(2).strip())
        elif thoughts:
            thoughts[-1] = f"{thoughts[-1]} {line.strip()}"
            in_order = False
        else:
            in_order = False
    bounded = tuple(t[:MAX_THOUGHT_CHARS] for t in thoughts[:MAX_THOUGHTS])
    return bounded, in_order


def _bounded(text: str) -> str:
    return text.strip()[:MAX_EXPLANATION_CHARS]


def _fallback(
    candidates: tuple[str, ...], thoughts: tuple[str, ...], explanation: str, why: list[str]
) -> ParsedRanking:
    return ParsedRanking(
        candidate_ids=candidates,
        ranked_ids=candidates,
        stated_ids=(),
        thoughts=thoughts,
        explanation=explanation,
        valid=False,
        complete=False,
        strict=False,
        fallback_used=True,
        reason="; ".join(why),
    )


def _check_candidates(candidates: tuple[str, ...]) -> None:
    if not 1 <= len(candidates) <= MAX_CANDIDATES:
        raise ValueError(f"need 1..{MAX_CANDIDATES} candidate ids, got {len(candidates)}")
    if len(set(candidates)) != len(candidates):
        raise ValueError("candidate ids contain a duplicate")
