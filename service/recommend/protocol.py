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


class HistoryItem(BaseModel):
    item_id: str
    title: str


class RecommendResponse(BaseModel):
    user_id: str
    items: list[RecommendedItem]
    history: list[HistoryItem] = Field(
        default_factory=list, description="The user's recent items the model read, oldest first"
    )
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


# Server-Sent Events of POST /recommend/stream: each is `event: <name>` then one
# `data: <JSON>` line of the model below.


class EvidenceEvent(BaseModel):
    """``evidence``: what the model reads, as soon as the graph has answered."""

    user_id: str
    history: list[HistoryItem]
    candidates: list[HistoryItem] = Field(description="The candidates the model ranks")
    evidence: list[EvidenceChain]


class ThoughtEvent(BaseModel):
    """``thought``: a piece of a step of the thoughts (a whole step when they are written
    from the evidence; as its tokens arrive when the model writes them); pieces with the
    same ``index`` (0 = the first step) concatenate to that step's text."""

    index: int = Field(ge=0)
    delta: str


class FallbackEvent(BaseModel):
    """``fallback``: the graph scorer ranks instead of the LLM (before ``ranking``)."""

    reason: str


class ErrorEvent(BaseModel):
    """``error``: the request failed after the stream began; ``status`` is the HTTP status
    /recommend would have answered. The stream ends after it (no ``done``)."""

    status: int
    error: str
    detail: str
    retry_after_s: int | None = None


class DoneEvent(BaseModel):
    """``done``: the last event of a stream that ranked."""

    latency_ms: float
    cached: bool


STREAM_EVENTS: dict[str, type[BaseModel]] = {
    "evidence": EvidenceEvent,
    "thought": ThoughtEvent,
    "fallback": FallbackEvent,
    "ranking": RecommendResponse,
    "error": ErrorEvent,
    "done": DoneEvent,
}
