"""Route: POST /rate (the user's rating of an item, with its reasoning)."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import RuntimeDep
from service.errors import (
    BODY_ERRORS,
    INVALID,
    NOT_FOUND,
    RATE_LIMITED,
    UNAUTHORIZED,
    UNAVAILABLE_OR_OVERLOADED,
    StrictJSONRoute,
)
from service.rate import serving
from service.rate.protocol import RateRequest, RateResponse
from service.security import ReadKey

router = APIRouter(
    tags=["ratings"],
    dependencies=[ReadKey],
    route_class=StrictJSONRoute,
    responses={**UNAUTHORIZED, **INVALID, **RATE_LIMITED, **UNAVAILABLE_OR_OVERLOADED},
)


@router.post("/rate", response_model=RateResponse, responses={**BODY_ERRORS, **NOT_FOUND})
async def rate(request: RateRequest, runtime: RuntimeDep) -> RateResponse:
    """Predict the user's 1-5 rating of the item, after three reasoning steps grounded in
    the graph's facts when `explain` is true; the item's mean rating if the model fails."""
    return await serving.rate(runtime, request)
