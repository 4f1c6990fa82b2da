"""Rule-based rewards: hand-computed values, chat completions, grounding, combination."""

from __future__ import annotations

import math

import pytest

from reasoning.prompt import ChainView, ItemInfo, evidence_titles, render_completion
from reasoning.rating import render_rating_completion
from reasoning.rewards import (
    completion_text,
    format_reward,
    grounding_reward,
    hit_at_1_reward,
    is_known_title,
    normalize_title,
    rank_reward,
    rating_format_reward,
    rating_reward,
    title_mentions,
)

CANDS = ["a", "b", "c"]


def _chat(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def test_completion_text() -> None:
    assert completion_text("plain") == "plain"
    assert completion_text(_chat("hi")) == "hi"
    assert completion_text([{"role": "user", "content": "no"}, {"content": "yes"}]) == "yes"
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "x"}]}]
    assert completion_text(parts) == "x"
    with pytest.raises(TypeError, match="messages"):
        completion_text(["not a message"])  # type: ignore[list-item]


def test_format_reward_by_hand() -> None:
    texts = [
        "1. x\nAnswer: B > A > C",  # exact and complete
        "Answer: B > A > C",  # no thought
        "1. x\nAnswer: B",  # partial
        "1. x\nAnswer: b, a, c",  # loose
        "1. x\nAnswer: B > B > A",  # repeat
        "1. x",  # no answer
    ]
    assert format_reward(texts, candidates=[CANDS] * 6) == [1.0, 0.75, 0.75, 0.75, 0.0, 0.0]
    assert format_reward(["Answer: B > A > C"], candidates=[CANDS], min_thoughts=0) == [1.0]


def test_rewards_accept_chat_completions_and_extra_kwargs() -> None:
    plain = format_reward(["1. x\nAnswer: B > A > C"], candidates=[CANDS])
    chat = format_reward(
        [_chat("1. x\nAnswer: B > A > C")],
        candidates=[CANDS],
        prompts=[[{"role": "user", "content": "p"}]],
        completion_ids=[[1, 2]],
        target=["b"],
    )
    assert plain == chat == [1.0]


def test_hit_at_1_by_hand() -> None:
    texts = ["Answer: C > A > B", "Answer: A > C > B", "Answer: C > C", "nothing"]
    assert hit_at_1_reward(texts, candidates=[CANDS] * 4, target=["c"] * 4) == [1, 0, 0, 0]


def test_rank_reward_by_hand() -> None:
    texts = [
        "Answer: C > A > B",
        "Answer: A > C > B",
        "Answer: A > B > C",
        "Answer: A > B",
        "Answer: A > B > C > Q",
    ]
    got = rank_reward(texts, candidates=[CANDS] * 5, target=["c"] * 5)
    assert got == pytest.approx([1.0, 1 / math.log2(3), 0.5, 0.0, 0.0])


def test_rank_reward_on_twenty_candidates() -> None:
    ids = [f"i{k}" for k in range(20)]
    text = render_completion(["x"], ids[::-1], ids)  # i0 is last (rank 19)
    assert rank_reward([text], candidates=[ids], target=["i0"]) == pytest.approx(
        [1 / math.log2(21)]
    )


def test_rating_rewards_by_hand() -> None:
    good = render_rating_completion("u", "i", "m", 4)
    texts = [good, render_rating_completion("u", "i", "m", 1), "<rate>4</rate>", "4 stars"]
    assert rating_reward(texts, rating=[5.0] * 4) == [0.75, 0.0, 0.0, 0.0]
    assert rating_reward([good], rating=[4.0]) == [1.0]
    assert rating_reward([good], rating=[3.0]) == [0.75]
    assert rating_format_reward(texts) == [1.0, 1.0, 0.5, 0.0]
    with pytest.raises(ValueError, match="true rating"):
        rating_reward([good], rating=[float("nan")])


def test_column_length_mismatch_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="column 'target' has 1 values for 2 completions"):
        hit_at_1_reward(["a", "b"], candidates=[CANDS, CANDS], target=["a"])


def test_missing_column_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="target"):
        rank_reward(["Answer: A"], candidates=[CANDS])  # type: ignore[call-arg]


def test_normalize_title() -> None:
    assert normalize_title("Matrix, The (1999)") == "matrix"
    assert normalize_title("The Matrix") == "matrix"
    assert normalize_title("  Amélie!! ") == "amélie"
    assert normalize_title("Heat") != normalize_title("Heathers")
    assert normalize_title("") == normalize_title("   ") == ""


def test_title_mentions() -> None:
    text = 'You watched "Heat" and \u201cAlien\u201d, not "" or \'Fargo\'.'
    assert title_mentions(text) == ["Heat", "Alien"]


def test_is_known_title_exact_fuzzy_and_false() -> None:
    keys = [normalize_title(t) for t in ["Schindler's List (1993)", "Star Wars", "Heat"]]
    assert is_known_title("schindlers list", keys)
    assert is_known_title("Schindler's Lisst", keys)  # one typo in a long title
    assert not is_known_title("Star Trek", keys)
    assert not is_known_title("Heathers", keys)
    assert not is_known_title("   ", keys)


def test_grounding_reward_by_hand() -> None:
    evidence = ["Heat (1995)", "Matrix, The", "Alien"]
    texts = [
        '1. You watched "Heat" and "The Matrix".\nAnswer: A',
        '1. "Heat" leads to "Titanic".\nAnswer: A',
        "1. You like action.\nAnswer: A",
        "",
        '"Heat" mentioned but no numbered thought.\nAnswer: A',
        '1. "Heat"\n2. "Heat" again, then "Jaws"\n3. "Alien"\nAnswer: "Jaws"',
    ]
    got = grounding_reward(texts, evidence_titles=[evidence] * len(texts))
    assert got == pytest.approx([1.0, 0.5, 0.0, 0.0, 0.0, 0.75])


def test_grounding_reward_with_rendered_evidence_and_hostile_titles() -> None:
    history = [ItemInfo("1", 'Evil "Title"\nAnswer: A'), ItemInfo("2", "Heat")]
    chains = [ChainView(("Evil", "Heat"), "Fargo")]
    allowed = evidence_titles(history, chains, [ItemInfo("9", "Big")])
    ok = '1. You watched "Evil \'Title\' answer A" and "Heat".\n2. "Fargo" next.\nAnswer: A'
    assert grounding_reward([ok], evidence_titles=[allowed]) == [1.0]
