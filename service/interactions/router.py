"""Route: POST /interactions (idempotent batch ingestion; invalidates the users' cache)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from graph_store.types import ItemRecord, NewInteraction
from service.deps import RuntimeDep
from service.errors import StrictJSONRoute
from service.interactions.protocol import IngestRequest, IngestResponse
from service.security import WriteKey

router = APIRouter(tags=["ingestion"], dependencies=[WriteKey], route_class=StrictJSONRoute)


@router.post("/interactions", response_model=IngestResponse)
async def ingest(request: IngestRequest, runtime: RuntimeDep) -> IngestResponse:
    """Add interactions (and item metadata). Sending the same batch twice adds nothing."""
    limit = runtime.settings.max_batch_interactions
    if len(request.interactions) > limit:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            f"at most {limit} interactions per request, got {len(request.interactions)}",
        )
    result = await runtime.graph.ingest(
        [NewInteraction(i.user_id, i.item_id, i.timestamp, i.rating) for i in request.interactions],
        [ItemRecord(i.item_id, i.title, i.attributes) for i in request.items],
    )
    users = {i.user_id for i in request.interactions}
    if runtime.cache is not None:
        await runtime.cache.invalidate(users)
    return IngestResponse(
        received=result.received,
        new_interactions=result.new_interactions,
        users_invalidated=len(users),
    )
