"""Request and response models of interaction ingestion.

The models are strict (``"timestamp": "5"`` or ``true`` is refused, not converted) and
every string is checked before it can be stored: ids by the one id rule (`common.ids`),
titles and attribute keys with no control characters or lone surrogates, attribute values
with no lone surrogates and no control characters but tab and newline. A lone surrogate
stored once made every later read of the item (and of each history holding it) a 500.
Timestamps are Unix seconds from 1970 to one day past the server's clock (a 2^62 once
went in), checked when the request is read.
"""

from __future__ import annotations

import math
import time
import unicodedata
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from service.ids import Id

MAX_ATTRIBUTE_KEY = 64
MAX_ATTRIBUTE_VALUE = 2000
VALUE_CONTROLS_ALLOWED = frozenset("\t\n\r")
FUTURE_SLACK_S = 86_400  # clocks disagree: a timestamp up to one day ahead is accepted
MAX_TIMESTAMP = 4_102_444_800  # 2100-01-01, the static bound the schema states


def text_problem(value: str, allowed_controls: frozenset[str] = frozenset()) -> str | None:
    """Why ``value`` cannot be stored as text (a phrase), or None when it can."""
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cs":
            return f"contains a lone surrogate {ch!r} (not well-formed UTF-8)"
        if category == "Cc" and ch not in allowed_controls:
            return f"contains control character {ch!r}"
    return None


def _line(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _paragraph(value: str) -> str:
    problem = text_problem(value, VALUE_CONTROLS_ALLOWED)
    if problem is not None:
        raise ValueError(problem)
    return value


Title = Annotated[str, StringConstraints(min_length=1, max_length=300), AfterValidator(_line)]
AttributeKey = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ATTRIBUTE_KEY), AfterValidator(_line)
]
AttributeValue = Annotated[
    str, StringConstraints(max_length=MAX_ATTRIBUTE_VALUE), AfterValidator(_paragraph)
]


class InteractionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    user_id: Id
    item_id: Id
    timestamp: int = Field(
        ge=0,
        le=MAX_TIMESTAMP,
        description="Unix seconds, from 1970 to one day past the server's clock",
    )
    rating: float | None = Field(None, ge=0, le=10)

    @field_validator("timestamp")
    @classmethod
    def _not_future(cls, value: int) -> int:
        latest = int(time.time()) + FUTURE_SLACK_S
        if value > latest:
            raise ValueError(f"timestamp {value} is in the future (latest accepted: {latest})")
        return value

    @field_validator("rating")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("rating must be a finite number")
        return value


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    item_id: Id
    title: Title
    attributes: dict[AttributeKey, AttributeValue] = Field(default_factory=dict, max_length=32)


class IngestRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
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
