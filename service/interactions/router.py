"""Route: POST /interactions (idempotent batch ingestion; invalidates the users' cache)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError

from graph_store.types import Item, ItemRecord, NewInteraction
from service.deps import RuntimeDep
from service.errors import (
    BODY_ERRORS,
    GRAPH_DOWN,
    INVALID,
    RATE_LIMITED,
    UNAUTHORIZED,
    StrictJSONRoute,
)
from service.interactions.protocol import IngestRequest, IngestResponse
from service.security import WriteKey

logger = logging.getLogger(__name__)

router = APIRouter(
    tags=["ingestion"],
    dependencies=[WriteKey],
    route_class=StrictJSONRoute,
    responses={**UNAUTHORIZED, **BODY_ERRORS, **INVALID, **RATE_LIMITED, **GRAPH_DOWN},
)


@router.post("/interactions", response_model=IngestResponse)
async def ingest(request: IngestRequest, runtime: RuntimeDep) -> IngestResponse:
    """Add interactions (and item metadata). Sending the same batch twice adds nothing.

    Item metadata replaces what is stored: a title or attributes that change an existing
    item are logged (the item, old and new title) as a catalogue overwrite."""
    limit = runtime.settings.max_batch_interactions
    if len(request.interactions) > limit:
        raise RequestValidationError(
            [
                {
                    "type": "too_long",
                    "loc": ("body", "interactions"),
                    "msg": f"at most {limit} interactions per request, "
                    f"got {len(request.interactions)}",
                    "input": None,
                    "ctx": {"max_length": limit},
                }
            ]
        )
    records = [ItemRecord(i.item_id, i.title, i.attributes) for i in request.items]
    before = await runtime.graph.items([r.item_id for r in records]) if records else {}
    result = await runtime.graph.ingest(
        [NewInteraction(i.user_id, i.item_id, i.timestamp, i.rating) for i in request.interactions],
        records,
    )
    _log_overwrites(records, before)
    users = {i.user_id for i in request.interactions}
    if runtime.cache is not None:
        await runtime.cache.invalidate(users)
    return IngestResponse(
        received=result.received,
        new_interactions=result.new_interactions,
        users_invalidated=len(users),
    )


def _log_overwrites(records: list[ItemRecord], before: dict[str, Item]) -> None:
    """Log each record that changes a stored item's title or one of its attributes (the
    stores merge attributes: a record's keys replace those keys, the rest stay)."""
    for record in records:
        old = before.get(record.item_id)
        if old is None or old.placeholder:
            continue
        changed = sorted(k for k, v in record.attributes.items() if old.attributes.get(k) != v)
        if old.title != record.title or changed:
            logger.warning(
                "catalogue overwrite: item %r title %r -> %r%s",
                record.item_id,
                old.title,
                record.title,
                f" (attributes changed: {', '.join(changed)})" if changed else "",
            )
