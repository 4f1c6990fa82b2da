"""Request and response models of the recommendation endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.ids import Id

MAX_GIVEN_CANDIDATES = 50


class RecommendRequest(BaseModel):
    """Strict: ``"k": "5"``, ``"k": true`` or ``"explain": 0`` is a 422, not converted."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"user_id": "42", "k": 5, "explain": True},
                {
                    "user_id": "42",
                    "k": 3,
                    "candidates": ["50", "181", "258", "1"],
                    "explain": False,
                },
            ]
        },
    )

    user_id: Id
    k: Annotated[int, Field(ge=1, le=20, description="How many items to return (1-20)")] = 10
    candidates: list[Id] | None = Field(
        None,
        description=f"Item ids to rank instead of retrieval (<= {MAX_GIVEN_CANDIDATES} unique)",
    )
    explain: bool = Field(True, description="Reason step by step and explain (slower)")

    @field_validator("candidates")
    @classmethod
    def _unique_and_bounded(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        unique = list(dict.fromkeys(value))
        if not unique:
            raise ValueError("candidates must not be empty (omit it to retrieve candidates)")
        if len(unique) > MAX_GIVEN_CANDIDATES:
            raise ValueError(f"at most {MAX_GIVEN_CANDIDATES} unique candidates, got {len(unique)}")
        return unique


class RecommendedItem(BaseModel):
    item_id: str
    title: str
    score: float = Field(description="Higher is better; comparable within one response only")
    rank: int


class EvidenceChain(BaseModel):
    """u0 -> shared items <- neighbour -> next item: collaborative evidence."""

    shared_items: list[str] = Field(description="Titles the user and the neighbour share")
    neighbour_id: str
    next_item_id: str
    next_title: str
    sentence: str


class RecommendResponse(BaseModel):
    user_id: str
    items: list[RecommendedItem]
    explanation: str
    thoughts: list[str]
    evidence: list[EvidenceChain]
    model: str
    cached: bool
    fallback: bool
    fallback_reason: str | None = Field(
        None,
        description="Why the graph scorer answered instead of the LLM (null if it did not): "
        "LLM unavailable, LLM timed out, LLM overloaded, LLM rejected the request, "
        "LLM answered malformed",
    )
    cold_start: bool
    valid: bool = Field(description="The model's own output parsed into a valid ranking")
    latency_ms: float
    llm_ms: float
