"""The `health_score` explanation (C3.2): a lead's score as the sum of its six signals."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from salesloop.core.explanations import register
from salesloop.health.scoring import EXPLANATION_VERSION


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignalBreakdown(_Strict):
    signal: Literal[
        "contact_frequency",
        "material_viewing",
        "meeting_attendance",
        "budget_progress",
        "response_rate",
        "customer_initiated",
    ]
    raw: float = Field(
        description="the measured value: decayed touches, decayed seconds viewed, share of meetings "
        "attended, budget stage 0-3 (unknown … approved), share of outreach answered, decayed "
        "customer-initiated contacts"
    )
    normalised: float = Field(ge=0, le=1, description="the raw value on a 0-1 scale (docs/health.md)")
    weight: int = Field(ge=0, le=100)
    contribution: float = Field(ge=0, le=100, description="weight × normalised, to 2 places")
    inputs: dict[str, float] = Field(
        description="the aggregates behind the raw value (windows and targets: the model version's)"
    )


@register(
    "health_score",
    version=EXPLANATION_VERSION,
    summary="A lead's health score (SPEC C3): each of the six signals with its raw value, its value "
    "normalised to 0-1, its weight and its contribution; the score is the contributions' sum, "
    "rounded half up. Decay: a fact counts 0.5^(age/half-life).",
)
class HealthScoreExplanation(_Strict):
    score: int = Field(ge=0, le=100)
    model_version: int
    at: str = Field(description="the moment the score was computed for (ISO 8601, UTC)")
    half_life_days: int
    red_threshold: int
    red: bool
    signals: list[SignalBreakdown]
