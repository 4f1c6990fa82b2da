"""Routes: user ids, a user's history and item lookup, straight from the graph store."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel

from graph_store.types import Item
from service.deps import RuntimeDep
from service.errors import (
    GRAPH_DOWN,
    INVALID,
    NOT_FOUND,
    RATE_LIMITED,
    UNAUTHORIZED,
    StrictJSONRoute,
)
from service.ids import PathId
from service.security import ReadKey

router = APIRouter(
    tags=["catalog"],
    dependencies=[ReadKey],
    route_class=StrictJSONRoute,
    responses={**UNAUTHORIZED, **INVALID, **RATE_LIMITED, **GRAPH_DOWN},
)


class ItemOut(BaseModel):
    item_id: str
    title: str
    attributes: dict[str, str]
    placeholder: bool

    @classmethod
    def of(cls, item: Item) -> ItemOut:
        return cls(
            item_id=item.item_id,
            title=item.title,
            attributes=dict(item.attributes),
            placeholder=item.placeholder,
        )


class HistoryEntryOut(BaseModel):
    item: ItemOut
    timestamp: int
    rating: float | None


class HistoryOut(BaseModel):
    user_id: str
    entries: list[HistoryEntryOut]


class UsersOut(BaseModel):
    user_ids: list[str]


@router.get("/users", response_model=UsersOut)
async def users(runtime: RuntimeDep, n: Annotated[int, Query(ge=1, le=1000)] = 50) -> UsersOut:
    """Some user ids to pick from: the first ``n`` in id order."""
    return UsersOut(user_ids=await runtime.graph.users(n))


@router.get("/users/{user_id}/history", response_model=HistoryOut)
async def history(
    user_id: PathId, runtime: RuntimeDep, n: Annotated[int, Query(ge=1, le=200)] = 20
) -> HistoryOut:
    """The user's most recent interactions, newest first (unknown user: empty)."""
    entries = await runtime.graph.history(user_id, n)
    return HistoryOut(
        user_id=user_id,
        entries=[
            HistoryEntryOut(item=ItemOut.of(e.item), timestamp=e.ts, rating=e.rating)
            for e in entries
        ],
    )


@router.get("/items/{item_id}", response_model=ItemOut, responses=NOT_FOUND)
async def item(item_id: PathId, runtime: RuntimeDep) -> ItemOut:
    found = await runtime.graph.item(item_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown item {item_id!r}")
    return ItemOut.of(found)
