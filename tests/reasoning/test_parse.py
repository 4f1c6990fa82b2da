"""The ranking parser: well-formed, lenient and hostile outputs; fallback; scores; fuzz."""

from __future__ import annotations

import random

import pytest

from reasoning.parse import (
    MAX_PARSE_CHARS,
    ParsedRanking,
    parse_ranking,
    parse_thoughts,
)

IDS3 = ["a", "b", "c"]
IDS20 = [f"i{n}" for n in range(20)]


def test_well_formed_completion() -> None:
    text = '1. You watched "Heat".\n2. So "Fargo" fits.\nAnswer: C > A > B'
    p = parse_ranking(text, IDS3)
    assert p.ranked_ids == p.stated_ids == ("c", "a", "b")
    assert p.thoughts == ('You watched "Heat".', 'So "Fargo" fits.')
    assert p.explanation == '1. You watched "Heat".\n2. So "Fargo" fits.'
    assert (p.valid, p.complete, p.strict, p.fallback_used, p.reason) == (
        True,
        True,
        True,
        False,
        "ok",
    )
    assert p.top == "c"


@pytest.mark.parametrize(
    ("text", "ranked", "valid", "complete", "strict"),
    [
        ("Answer: C > A > B", ("c", "a", "b"), True, True, True),  # no thoughts
        ("Answer: C", ("c", "a", "b"), True, False, True),  # partial: rest appended
        ("answer: c > a > b", ("c", "a", "b"), True, True, False),  # case
        ("**Answer:** (C) > [A] > **B**.", ("c", "a", "b"), True, True, False),
        ("Answer: C, A, B", ("c", "a", "b"), True, True, False),
        ("Answer: C A B", ("c", "a", "b"), True, True, False),
        ("Answer: C: Fargo > A (Heat) > B - Big", ("c", "a", "b"), True, True, False),
        ("Answer:C>A>B", ("c", "a", "b"), True, True, False),
        ("1. x\nAnswer: C > A > B\nThanks!", ("c", "a", "b"), True, True, False),
        ("3. x\nAnswer: C > A > B", ("c", "a", "b"), True, True, False),  # numbering
        ("Sure.\n1. x\nAnswer: C > A > B", ("c", "a", "b"), True, True, False),
        ("Answer: A\nAnswer: B > C > A", ("b", "c", "a"), True, True, False),  # last wins
    ],
)
def test_lenient_forms(
    text: str, ranked: tuple[str, ...], valid: bool, complete: bool, strict: bool
) -> None:
    p = parse_ranking(text, IDS3)
    assert p.ranked_ids == ranked
    assert (p.valid, p.complete, p.strict) == (valid, complete, strict)
    assert p.fallback_used is not (valid and complete)


@pytest.mark.parametrize(
    ("text", "ranked", "stated", "reason"),
    [
        ("", ("a", "b", "c"), (), "empty output"),
        ("   \n ", ("a", "b", "c"), (), "empty output"),
        ("1. I think about it and", ("a", "b", "c"), (), "no answer line"),
        ("Answer:", ("a", "b", "c"), (), "empty answer; incomplete: 0 of 3"),
        ("Answer: C > A >", ("c", "a", "b"), ("c", "a"), "empty token; incomplete: 2 of 3"),
        (
            "Answer: C > D > A",
            ("c", "a", "b"),
            ("c", "a"),
            "unknown letter 'D'; incomplete: 2 of 3",
        ),
        ("Answer: B > B > A > C", ("b", "a", "c"), ("b", "a", "c"), "repeated letter 'B'"),
        (
            "Answer: Fargo > C",
            ("c", "a", "b"),
            ("c",),
            "malformed token 'Fargo'; incomplete: 1 of 3",
        ),
        (
            "Answer: I think C",
            ("c", "a", "b"),
            ("c",),
            "unknown letter 'I'; malformed token 'think'; incomplete: 1 of 3",
        ),
    ],
)
def test_bad_output_falls_back_and_is_flagged(
    text: str, ranked: tuple[str, ...], stated: tuple[str, ...], reason: str
) -> None:
    p = parse_ranking(text, IDS3)
    assert p.ranked_ids == ranked
    assert p.stated_ids == stated
    assert p.reason == reason
    assert not p.valid and not p.strict and p.fallback_used


def test_twenty_candidates_full_ranking_and_out_of_range_letter() -> None:
    letters = "TSRQPONMLKJIHGFEDCBA"
    p = parse_ranking("Answer: " + " > ".join(letters), IDS20)
    assert p.ranked_ids == tuple(IDS20[::-1]) and p.valid and p.complete and p.strict
    bad = parse_ranking("Answer: U > A", IDS20)
    assert bad.stated_ids == ("i0",) and not bad.valid and "unknown letter 'U'" in bad.reason


def test_letter_beyond_candidate_count_is_unknown() -> None:
    p = parse_ranking("Answer: D > A", IDS3)
    assert "unknown letter 'D'" in p.reason and set(p.ranked_ids) == set(IDS3)


def test_endless_text_is_bounded() -> None:
    endless = "1. " + "and then " * 50_000  # 450k characters, no answer
    p = parse_ranking(endless, IDS3)
    assert p.reason == "no answer line" and p.ranked_ids == ("a", "b", "c")
    assert len(p.explanation) <= 8_000
    late = "x" * MAX_PARSE_CHARS + "\nAnswer: C > B > A"
    assert parse_ranking(late, IDS3).reason == "no answer line"  # past the read limit


def test_multiline_thought_continuation() -> None:
    text = "1. first line\ncontinued here\n2) second\nAnswer: A > B > C"
    p = parse_ranking(text, IDS3)
    assert p.thoughts == ("first line continued here", "second")
    assert p.valid and not p.strict


def test_parse_thoughts() -> None:
    assert parse_thoughts("1. a\n2. b\nAnswer: A") == ("a", "b")
    assert parse_thoughts("1. a\n2. b") == ("a", "b")
    assert parse_thoughts("no numbers\nAnswer: A") == ()


def test_bad_candidate_ids_are_a_caller_error() -> None:
    with pytest.raises(ValueError, match=r"1\.\.20"):
        parse_ranking("Answer: A", [])
    with pytest.raises(ValueError, match=r"1\.\.20"):
        parse_ranking("Answer: A", [str(i) for i in range(21)])
    with pytest.raises(ValueError, match="duplicate"):
        parse_ranking("Answer: A", ["x", "x"])


def test_non_string_text_is_treated_as_empty() -> None:
    p = parse_ranking(None, IDS3)  # type: ignore[arg-type]
    assert p.reason == "empty output" and p.ranked_ids == tuple(IDS3)


def test_fallback_order_by_hand() -> None:
    assert parse_ranking("Answer: C > A > B", IDS3).ranked_ids == ("c", "a", "b")
    # Fallback order: stated letters first, then the given order.
    assert parse_ranking("Answer: B", IDS3).ranked_ids == ("b", "a", "c")
    assert parse_ranking("", IDS3).ranked_ids == tuple(IDS3)
    ranked = parse_ranking("Answer: T > A", IDS20).ranked_ids
    assert ranked[:2] == (IDS20[19], IDS20[0]) and ranked[2:] == tuple(IDS20[1:19])


def _assert_sane(p: ParsedRanking, ids: list[str]) -> None:
    assert sorted(p.ranked_ids) == sorted(ids)  # a permutation: only candidates, no repeats
    assert len(set(p.stated_ids)) == len(p.stated_ids)
    assert set(p.stated_ids) <= set(ids)
    assert p.ranked_ids[: len(p.stated_ids)] == p.stated_ids
    assert p.complete == (len(p.stated_ids) == len(ids))
    assert not p.strict or p.valid
    assert p.fallback_used == (not (p.valid and p.complete))


def test_fuzz_never_raises_and_never_returns_a_non_candidate() -> None:
    rng = random.Random(20240607)
    tokens = [
        "Answer:",
        "answer :",
        "ANSWER\uff1a",
        "**",
        " > ",
        ">",
        ",",
        " ",
        "\n",
        "1.",
        "2)",
        "A",
        "B",
        "C",
        "T",
        "U",
        "Z",
        "a",
        "(",
        ")",
        "[",
        "]",
        '"',
        "Heat",
        "\u2028",
        "\x00",
        "\t",
        "é",
        "-",
        ":",
        ".",
        "999999999999.",
    ]
    for trial in range(3000):
        n = rng.randint(1, 20)
        ids = [f"id{rng.randint(0, 10**6)}-{k}" for k in range(n)]
        if trial % 3 == 0:
            text = "".join(rng.choice(tokens) for _ in range(rng.randint(0, 60)))
        elif trial % 3 == 1:
            text = "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 200)))
        else:  # a real completion, cut at a random point or with a letter mutated
            letters = [chr(65 + k) for k in rng.sample(range(n), n)]
            text = "1. x\nAnswer: " + " > ".join(letters)
            cut = rng.randint(0, len(text))
            text = text[:cut] + rng.choice(["", "A", "Q", " > ", "\n"]) + text[cut:]
        _assert_sane(parse_ranking(text, ids), ids)
