"""Request and response models of interaction ingestion."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.ids import Id


class InteractionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: Id
    item_id: Id
    timestamp: int = Field(ge=0, lt=2**62, description="Unix seconds")
    rating: float | None = Field(None, ge=0, le=10)

    @field_validator("rating")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("rating must be a finite number")
        return value


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: Id
    title: str = Field(min_length=1, max_length=300)
    attributes: dict[str, str] = Field(default_factory=dict, max_length=32)


class IngestRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "interactions": [{"user_id": "42", "item_id": "50", "timestamp": 1700000000}],
                    "items": [
                        {"item_id": "50", "title": "Star Wars", "attributes": {"year": "1977"}}
                    ],
                }
            ]
        },
    )

    interactions: list[InteractionIn] = Field(min_length=1)
    items: list[ItemIn] = Field(default_factory=list, description="Optional item metadata")


class IngestResponse(BaseModel):
    received: int = Field(description="Interactions received after removing exact repeats")
    new_interactions: int = Field(description="Edges that did not exist before")
    users_invalidated: int
