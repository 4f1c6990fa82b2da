"""Routes: POST /recommend, POST /recommend/stream, GET /users/{user_id}/recommendations."""

from __future__ import annotations

from typing import Annotated, Any

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
from service.recommend import serving, streaming
from service.recommend.protocol import STREAM_EVENTS, RecommendRequest, RecommendResponse
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


def _event_stream_schema() -> dict[str, Any]:
    """Each event of the stream: its name and its JSON data's model (in components)."""
    return {
        "itemSchema": {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["event", "data"],
                    "properties": {
                        "event": {"const": name},
                        "data": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "contentSchema": {"$ref": f"#/components/schemas/{model.__name__}"},
                        },
                    },
                }
                for name, model in STREAM_EVENTS.items()
            ]
        },
    }


@router.post(
    "/recommend/stream",
    response_class=streaming.EventStream,
    status_code=200,
    responses={
        **BODY_ERRORS,
        200: {
            "description": "Server-Sent Events: evidence, thought (explain=true), fallback "
            "(when the graph scorer ranks), ranking (the /recommend body), done; or error "
            "(with the HTTP status /recommend would have answered) after which the stream "
            "ends",
            "content": {"text/event-stream": _event_stream_schema()},
        },
    },
)
async def recommend_stream(request: RecommendRequest, runtime: RuntimeDep) -> Response:
    """The same ranking as POST /recommend, streamed as it is made: the evidence first,
    each reasoning step as its tokens arrive, then the ranking. Closing the connection
    cancels the request."""
    return await streaming.stream(runtime, request)


@router.get("/users/{user_id}/recommendations", response_model=RecommendResponse)
async def user_recommendations(
    user_id: PathId,
    runtime: RuntimeDep,
    k: Annotated[int, Query(ge=1, le=20)] = 10,
    explain: bool = True,
) -> Response:
    """The same as POST /recommend with retrieved candidates."""
    return await serving.recommend(runtime, RecommendRequest(user_id=user_id, k=k, explain=explain))
