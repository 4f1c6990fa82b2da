"""evaluation.explanations: grounded titles, repeated thoughts, pick agreement."""

from __future__ import annotations

from evaluation.explanations import (
    ExplanationCheck,
    check_explanation,
    first_pick,
    has_repeat,
    summarise_checks,
)

SHOWN = ["Heat (1995)", "Matrix, The (1999)", "Alien (1979)", "Casino (1995)", "Fargo (1996)"]
CANDIDATES = [("c1", "Alien (1979)"), ("c2", "Casino (1995)"), ("c3", "Fargo (1996)")]


def test_quoted_titles_count_as_grounded_only_when_the_prompt_showed_them() -> None:
    thoughts = ['You watched "Heat" and "The Matrix".', 'Fans went on to "Titanic".']
    check = check_explanation(thoughts, SHOWN, CANDIDATES, top_id="c1")
    assert (check.quoted, check.grounded) == (3, 2)
    typo = check_explanation(['"Matrx, The"'], SHOWN, CANDIDATES, top_id="c1")
    assert typo.grounded == 1  # a dropped letter in a title still names it


def test_the_repeated_title_output_of_the_untuned_model_is_flagged() -> None:
    kingpin = ['"The Kingpin" (Chain k)'] * 18
    assert has_repeat(kingpin)
    assert not has_repeat(['"Heat" is a thriller.', '"Alien" is a thriller.'])
    assert not has_repeat([])


def test_first_pick_is_the_first_candidate_named_by_letter_or_title() -> None:
    assert first_pick(['You liked "Heat".', 'So (B) first, then "Alien"'], CANDIDATES) == "c2"
    assert first_pick(['"Fargo" fits, unlike (A)'], CANDIDATES) == "c3"
    assert first_pick(['You liked "Heat".'], CANDIDATES) is None
    assert first_pick(["(Z) is not a candidate letter"], CANDIDATES) is None


def test_agreement_needs_the_pick_to_be_the_top_item() -> None:
    thoughts = ['"Casino" (B) follows "Heat".']
    assert check_explanation(thoughts, SHOWN, CANDIDATES, top_id="c2").agrees
    assert not check_explanation(thoughts, SHOWN, CANDIDATES, top_id="c1").agrees
    assert not check_explanation([], SHOWN, CANDIDATES, top_id="c1").agrees


def test_summary_shares() -> None:
    checks = [
        ExplanationCheck(quoted=4, grounded=4, repeated=False, pick="a", agrees=True, thoughts=3),
        ExplanationCheck(quoted=6, grounded=3, repeated=True, pick=None, agrees=False, thoughts=6),
        ExplanationCheck(quoted=0, grounded=0, repeated=False, pick=None, agrees=False, thoughts=0),
    ]
    summary = summarise_checks(checks)
    assert summary["grounded titles"] == 7 / 10
    assert summary["repeated thought"] == 1 / 3
    assert summary["pick agreement"] == 1 / 3
    assert summary["explained"] == 2 / 3
    assert summarise_checks([])["pick agreement"] == 0.0
