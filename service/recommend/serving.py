"""The logic behind /recommend: cache, pipeline, metrics, response.

Only LLM rankings are cached: a fallback or cold-start answer is not stored, so the next
request tries the model again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import Response
from pydantic import ValidationError

from graph_store.types import Chain
from reasoning.explain import RecommendationListener
from reasoning.outcomes import Recommendation
from service.cache import Lookup as CacheLookup
from service.recommend.protocol import (
    EvidenceChain,
    HistoryItem,
    RecommendedItem,
    RecommendRequest,
    RecommendResponse,
)
from service.runtime import Runtime


def to_response(rec: Recommendation, k: int, model: str, started: float) -> RecommendResponse:
    return RecommendResponse(
        user_id=rec.user_id,
        items=[
            RecommendedItem(item_id=i.item_id, title=i.title, score=i.score, rank=i.rank)
            for i in rec.items[:k]
        ],
        history=[HistoryItem(item_id=h.item.item_id, title=h.item.title) for h in rec.history],
        explanation=rec.explanation,
        thoughts=list(rec.thoughts),
        evidence=evidence_chains(rec.chains),
        model=model,
        cached=False,
        fallback=rec.fallback,
        fallback_reason=rec.reason if rec.fallback else None,
        cold_start=rec.cold_start,
        valid=rec.valid,
        latency_ms=(time.perf_counter() - started) * 1000,
        llm_ms=rec.llm_seconds * 1000,
    )


def evidence_chains(chains: Sequence[Chain]) -> list[EvidenceChain]:
    return [
        EvidenceChain(
            shared_items=[s.title for s in c.shared],
            neighbour_id=c.neighbour_id,
            next_item_id=c.next_item_id,
            next_title=c.next_title,
            sentence=c.sentence(),
        )
        for c in chains
    ]


def json_body(payload: dict[str, Any]) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json")


async def recommend(runtime: Runtime, request: RecommendRequest) -> Response:
    """The /recommend response, already serialised."""
    started = time.perf_counter()
    deadline = time.monotonic() + runtime.settings.llm_timeout_s  # queue time counts
    lookup, hit = await lookup_cached(runtime, request, started)
    if hit is not None:
        return json_body(hit)
    _, payload = await answer(runtime, request, started, deadline, lookup)
    return json_body(payload)


async def lookup_cached(
    runtime: Runtime, request: RecommendRequest, started: float
) -> tuple[CacheLookup | None, dict[str, Any] | None]:
    """The cache lookup (None without a cache) and the cached response, if any. A hit is
    checked against the response model before it is served: an entry that does not fit
    (corrupt, written by an older version, fields missing) is deleted and the answer
    recomputed."""
    cache = runtime.cache
    if cache is None:
        return None, None
    params = request.model_dump(exclude={"user_id"})
    if request.explain:
        params["thoughts"] = runtime.settings.thoughts  # who wrote them is part of the answer
    lookup = await cache.get(request.user_id, runtime.model_version, params)
    hit = _valid_cached(lookup.body)
    if lookup.body is not None and hit is None:
        await cache.discard(lookup)
    runtime.metrics.cache.labels("hit" if hit is not None else "miss").inc()
    if hit is not None:
        hit.update(cached=True, latency_ms=(time.perf_counter() - started) * 1000, llm_ms=0.0)
    return lookup, hit


async def answer(
    runtime: Runtime,
    request: RecommendRequest,
    started: float,
    deadline: float,
    lookup: CacheLookup | None,
    listener: RecommendationListener | None = None,
) -> tuple[Recommendation, dict[str, Any]]:
    """Rank (the model, else the graph scorer), count it, cache an LLM answer; the
    ranking and the response body."""
    slot = runtime.slot  # the model this request is answered and labelled with
    rec = await runtime.recommend(
        request.user_id,
        request.candidates,
        request.explain,
        deadline=deadline,
        listener=listener,
        slot=slot,
    )
    if rec.fallback:
        runtime.metrics.fallbacks.labels(rec.reason).inc()
    elif not rec.cold_start:
        runtime.metrics.llm.labels("explain" if request.explain else "score").observe(
            rec.llm_seconds
        )
    payload = to_response(rec, request.k, slot.version, started).model_dump(mode="json")
    cache = runtime.cache
    fresh = lookup is not None and lookup.version == slot.version  # no switch since lookup
    if (
        cache is not None
        and lookup is not None
        and fresh
        and not rec.fallback
        and not rec.cold_start
    ):
        await cache.put(lookup, payload)
    return rec, payload


def _valid_cached(body: dict[str, Any] | None) -> dict[str, Any] | None:
    """The cached body as the response model dumps it, or None if it does not fit."""
    if body is None:
        return None
    try:
        return RecommendResponse.model_validate(body).model_dump(mode="json")
    except ValidationError:
        return None
