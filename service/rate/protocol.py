"""Request and response models of POST /rate."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.ids import Id

Basis = Literal["blend", "model", "baseline", "item mean", "user mean", "scale midpoint"]


class RateRequest(BaseModel):
    """Strict, like /recommend: ``"explain": 0`` is a 422, not converted."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"user_id": "42", "item_id": "50", "explain": True}]},
    )

    user_id: Id
    item_id: Id
    explain: bool = Field(True, description="Reason in three steps before rating (slower)")


class RatingFactsOut(BaseModel):
    """What the graph says about the pair, as the prompt shows it (never the pair itself)."""

    user_mean: float | None = Field(description="The user's mean rating of other items")
    user_spread: float | None = Field(description="Their standard deviation")
    user_count: int
    item_mean: float | None = Field(
        description="The item's mean rating by its most recent raters (up to the store's cap)"
    )
    item_count: int
    neighbour_mean: float | None = Field(
        description="The mean rating of the item by users who share the user's taste"
    )
    neighbour_count: int


class RateResponse(BaseModel):
    user_id: str
    item_id: str
    title: str
    rating: float = Field(
        ge=1,
        le=5,
        description="The prediction: (1 - blend_weight) * baseline_rating + blend_weight * "
        "model_rating (basis blend), the model's alone, or the basis's",
    )
    model_rating: float | None = Field(
        description="The model's expectation over 1..5 (None: the model did not answer)"
    )
    baseline: str | None = Field(
        description="The rating model's classical partner (e.g. mf), fitted on the store"
    )
    baseline_rating: float | None = Field(description="The partner's prediction")
    blend_weight: float | None = Field(description="The model's weight in the blend")
    most_likely: int | None = Field(description="The model's most likely rating, 1-5")
    probabilities: list[float] | None = Field(description='The model\'s P("1").."5"')
    reasoning: str | None = Field(description="The model's three analysis steps (explain=true)")
    valid: bool | None = Field(description="The reasoning follows the format (explain=true)")
    facts: RatingFactsOut
    basis: Basis = Field(
        description="What the rating comes from: blend (model and partner), model, baseline "
        "(the partner, when the model fails), else a mean"
    )
    model: str
    fallback: bool = Field(description="True when the model did not answer")
    fallback_reason: str | None
    latency_ms: float
    llm_ms: float
