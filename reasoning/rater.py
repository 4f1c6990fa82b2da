"""Rating inference: a model predicts a user's 1-5 rating of an item (RecZero / RecOne).

The rating counterpart of `reasoning.recommender.Recommender`: the prompt, completion
format and parser are `reasoning.rating`; this module runs a backend on them.

    predictions = await predict_ratings(backend, queries, max_tokens=192, batch_size=8)
    predictions[0].expected      # e.g. 3.7: the expectation over "1".."5"

A query is anything with ``history`` (the user's `RatedItem`s, oldest first) and
``target`` (an `ItemInfo`), e.g. `evaluation.rating.RatingTarget`. Per query, the model
writes its reasoning greedily from `render_rating_messages(history, target)` until it
writes ``<rate>`` (or its token budget runs out), then ``<rate>`` is appended and
`score_choices` reads the next-token probabilities of "1".."5" (renormalised over the
five). The predicted rating is their expectation (the RMSE-optimal point prediction
under the model's distribution). ``valid``: the reasoning, completed as
``TEXT<rate>N</rate>`` with N the most likely choice, parses as a valid four-step rating
completion (`parse_rating(...).valid`): the model wrote the three analysis steps in
order, since the rating itself is always read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from reasoning.backends.base import GenerationParams, LLMBackend
from reasoning.prompt import ItemInfo
from reasoning.rating import RatedItem, parse_rating, render_rating_messages
from reasoning.rating_facts import RatingFacts
from reasoning.rating_template import RATE_OPEN, completion_facts, template_prefix

CHOICES: tuple[str, ...] = ("1", "2", "3", "4", "5")


class RatingQuery(Protocol):
    """What the model is asked about: a rated history and a target item."""

    @property
    def history(self) -> Sequence[RatedItem]: ...

    @property
    def target(self) -> ItemInfo: ...


@dataclass(frozen=True)
class RatingPrediction:
    """The model's answer for one query."""

    expected: float  # sum_k k * p_k over "1".."5"
    argmax: int
    probabilities: tuple[float, ...]  # of "1".."5", summing to 1
    reasoning: str  # the generated text before <rate>
    valid: bool


def prediction_from_logprobs(logprobs: dict[str, float], reasoning: str) -> RatingPrediction:
    """The prediction read from the log-probabilities of "1".."5" after the reasoning."""
    probs = np.exp(np.array([logprobs[c] for c in CHOICES], dtype=np.float64))
    probs = probs / probs.sum()
    best = int(np.argmax(probs)) + 1
    valid = parse_rating(f"{reasoning}{RATE_OPEN}{best}</rate>").valid
    expected = float(np.dot(probs, np.arange(1, len(CHOICES) + 1)))
    return RatingPrediction(expected, best, tuple(float(p) for p in probs), reasoning, valid)


async def rate_at_once(
    backend: LLMBackend, query: RatingQuery, facts: RatingFacts | None = None
) -> RatingPrediction:
    """The rating without reasoning: the distribution right after ``<rate>`` (one pass;
    ``valid`` is False, as no step was written)."""
    messages = render_rating_messages(query.history, query.target, facts)
    scores = await backend.score_choices([messages], RATE_OPEN, CHOICES)
    return prediction_from_logprobs(scores[0], "")


async def rate_after_template(
    backend: LLMBackend, query: RatingQuery, facts: RatingFacts
) -> RatingPrediction:
    """The rating head's reading (`training.rating.head`): the three grounded steps written
    from the facts (`reasoning.rating_template`), then the distribution after ``<rate>``, in
    one pass. ``reasoning`` is those steps; a query without a rated history is refused
    (``ValueError``), as the steps need one."""
    steps = completion_facts(query.history, facts.item_mean, facts.item_count)
    prefix = template_prefix(steps, query.target, len(query.history))
    messages = render_rating_messages(query.history, query.target, facts)
    scores = await backend.score_choices([messages], prefix, CHOICES)
    return prediction_from_logprobs(scores[0], prefix[: -len(RATE_OPEN)])


async def predict_ratings(
    backend: LLMBackend,
    queries: Sequence[RatingQuery],
    max_tokens: int = 192,
    batch_size: int = 8,
    facts: Sequence[RatingFacts | None] | None = None,
) -> list[RatingPrediction]:
    """Reason (greedy, up to ``<rate>``), then read the rating distribution (see above);
    ``facts``, per query, go into its prompt (`reasoning.rating_facts`)."""
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, stop=(RATE_OPEN,))
    given = list(facts) if facts is not None else [None] * len(queries)
    if len(given) != len(queries):
        raise ValueError(f"{len(given)} facts for {len(queries)} queries")
    out: list[RatingPrediction] = []
    for start in range(0, len(queries), batch_size):
        batch = [
            render_rating_messages(q.history, q.target, f)
            for q, f in zip(
                queries[start : start + batch_size], given[start : start + batch_size], strict=True
            )
        ]
        generations = await backend.generate(batch, params)
        # each conversation continues its own reasoning, so each is scored on its own
        scores = await asyncio.gather(
            *(
                backend.score_choices([m], g.text + RATE_OPEN, CHOICES)
                for m, g in zip(batch, generations, strict=True)
            )
        )
        out += [
            prediction_from_logprobs(s[0], g.text) for s, g in zip(scores, generations, strict=True)
        ]
    return out
