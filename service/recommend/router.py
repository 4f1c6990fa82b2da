"""Routes: POST /recommend, GET /users/{user_id}/recommendations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from service.deps import RuntimeDep
from service.errors import (
    BODY_ERRORS,
    INVALID,
    LLM_REJECTED,
    RATE_LIMITED,
    UNAUTHORIZED,
    UNAVAILABLE_OR_OVERLOADED,
    StrictJSONRoute,
)
from service.ids import PathId
from service.recommend import serving
from service.recommend.protocol import RecommendRequest, RecommendResponse
from service.security import ReadKey

router = APIRouter(
    tags=["recommendations"],
    dependencies=[ReadKey],
    route_class=StrictJSONRoute,
    responses={
        **UNAUTHORIZED,
        **INVALID,
        **RATE_LIMITED,
        **LLM_REJECTED,
        **UNAVAILABLE_OR_OVERLOADED,
    },
)


@router.post("/recommend", response_model=RecommendResponse, responses=BODY_ERRORS)
async def recommend(request: RecommendRequest, runtime: RuntimeDep) -> Response:
    """Rank candidates for a user, with step-by-step reasoning when `explain` is true."""
    return await serving.recommend(runtime, request)


@router.get("/users/{user_id}/recommendations", response_model=RecommendResponse)
async def user_recommendations(
    user_id: PathId,
    runtime: RuntimeDep,
    k: Annotated[int, Query(ge=1, le=20)] = 10,
    explain: bool = True,
) -> Response:
    """The same as POST /recommend with retrieved candidates."""
    return await serving.recommend(runtime, RecommendRequest(user_id=user_id, k=k, explain=explain))
