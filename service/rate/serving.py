"""The logic behind POST /rate: the user's rating of an item, with its reasoning.

The graph store gives the evidence (`GraphStoreBase.rating_evidence`: the user's other
ratings, the item's raters, taste neighbours), read as the facts the rating prompt shows
(`reasoning.rating_facts`), and the user's most recent rated items (the prompt's
history). Then one of two models rates:

- the published rating model (`service.rate.model`), when there is one: its grounded
  three steps are written from the facts (`reasoning.rating_template`), the rating is the
  expectation over "1".."5" after ``<rate>`` (one pass), blended with its classical
  partner fitted on the store's ratings (basis ``blend``);
- else the ranking model: it reasons in three steps up to ``<rate>`` (``explain``) or
  reads the distribution at once (`reasoning.rater`).

When the model fails (down, slow, malformed) or the user has no rated history for the
rating model to read, the answer is the partner's prediction (basis ``baseline``), else
the item's mean rating (else the user's, else 3), marked ``fallback`` with the reason,
like /recommend's graph scorer.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from fastapi import HTTPException, status

from reasoning.backends.base import LLMBackend
from reasoning.evidence import item_info
from reasoning.outcomes import FALLBACK_REASONS, fallback_reason
from reasoning.prompt import ItemInfo
from reasoning.rater import RatingPrediction, predict_ratings, rate_after_template, rate_at_once
from reasoning.rating import HISTORY_SIZE, RatedItem
from reasoning.rating_facts import TASTE, RatingFacts, facts_from_evidence
from service.rate.model import RatingModel
from service.rate.protocol import Basis, RateRequest, RateResponse, RatingFactsOut
from service.runtime import Runtime

HISTORY_READ = 5 * HISTORY_SIZE  # recent interactions read to find HISTORY_SIZE rated ones


def basis_rating(facts: RatingFacts) -> tuple[float, Basis]:
    """The rating without a model: the item's mean, else the user's, else 3.

    >>> basis_rating(RatingFacts(4.0, 1.0, 2, None, 0, None, 0))
    (4.0, 'user mean')
    """
    if facts.item_mean is not None:
        return facts.item_mean, "item mean"
    if facts.user_mean is not None:
        return facts.user_mean, "user mean"
    return 3.0, "scale midpoint"


async def rate(runtime: Runtime, request: RateRequest) -> RateResponse:
    started = time.perf_counter()
    graph = runtime.graph
    item = await graph.item(request.item_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown item {request.item_id!r}")
    entries, evidence = await asyncio.gather(
        graph.history(request.user_id, HISTORY_READ),
        graph.rating_evidence(request.user_id, request.item_id, TASTE),
    )
    rated = [
        RatedItem(item_info(e.item), e.rating)
        for e in entries
        if e.rating is not None and e.item.item_id != item.item_id
    ]
    history = tuple(reversed(rated[:HISTORY_SIZE]))  # oldest first
    facts = facts_from_evidence(evidence)
    query = _Query(history, item_info(item))
    head = runtime.rating
    llm, version = (head.llm, head.version) if head else (runtime.slot.llm, runtime.slot.version)
    prediction: RatingPrediction | None = None
    reason: str | None = "no model loaded"
    llm_started = time.perf_counter()
    if head is not None and not history:
        reason = "no rated history to read"
    elif llm is not None:
        try:
            prediction = await asyncio.wait_for(
                _predict(llm, query, facts, request, runtime, head is not None),
                runtime.settings.llm_timeout_s,
            )
            reason = None
        except tuple(kind for kind, _ in FALLBACK_REASONS) as err:
            reason = fallback_reason(err)
            runtime.metrics.fallbacks.labels(reason).inc()
    llm_ms = (time.perf_counter() - llm_started) * 1000 if llm is not None else 0.0
    rating, basis, partner = _served(prediction, facts, head, request)
    return RateResponse(
        user_id=request.user_id,
        item_id=item.item_id,
        title=item.title,
        rating=min(max(rating, 1.0), 5.0),
        model_rating=prediction.expected if prediction else None,
        baseline=head.blend_with if head and partner is not None else None,
        baseline_rating=partner,
        blend_weight=head.blend_weight if head and basis == "blend" else None,
        most_likely=prediction.argmax if prediction else None,
        probabilities=list(prediction.probabilities) if prediction else None,
        reasoning=prediction.reasoning if prediction and request.explain else None,
        valid=prediction.valid if prediction and request.explain else None,
        facts=RatingFactsOut(**facts.__dict__),
        basis=basis,
        model=version,
        fallback=prediction is None,
        fallback_reason=reason if prediction is None else None,
        latency_ms=(time.perf_counter() - started) * 1000,
        llm_ms=llm_ms,
    )


def _served(
    prediction: RatingPrediction | None,
    facts: RatingFacts,
    head: RatingModel | None,
    request: RateRequest,
) -> tuple[float, Basis, float | None]:
    """(rating, basis, the partner's prediction): the rating head blended with its partner
    (alone until the partner is fitted), else the ranking model's reading; without a model
    answer, the partner, else the item's or the user's mean."""
    if head is not None:
        if prediction is not None:
            rating, partner = head.blend(prediction.expected, request.user_id, request.item_id)
            return rating, "blend" if partner is not None else "model", partner
        partner = head.partner_rating(request.user_id, request.item_id)
        if partner is not None:
            return partner, "baseline", partner
    if prediction is not None:
        return prediction.expected, "model", None
    return (*basis_rating(facts), None)


@dataclass(frozen=True)
class _Query:
    """A `reasoning.rater.RatingQuery`: the rated history (oldest first) and the target."""

    history: tuple[RatedItem, ...]
    target: ItemInfo


async def _predict(
    llm: LLMBackend,
    query: _Query,
    facts: RatingFacts,
    request: RateRequest,
    runtime: Runtime,
    template: bool,
) -> RatingPrediction:
    """The rating head reads after its grounded steps (one pass, always explained); the
    ranking model reasons first (explain) or reads at once."""
    if template:
        return await rate_after_template(llm, query, facts)
    if not request.explain:
        return await rate_at_once(llm, query, facts)
    budget = runtime.settings.max_reasoning_tokens
    return (await predict_ratings(llm, [query], budget, 1, [facts]))[0]
