"""The `indicator_value` explanation (DESIGN.md rule 2): everything a manager needs to check a value
by hand — the inputs, the thresholds version and numbers, the rule that decided, the period before."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from salesloop.core.explanations import _Strict, register


@register(
    "indicator_value",
    version=1,
    summary="Why a leading indicator (C9) has its value and status: the formula's inputs, the "
    "thresholds version in force, each check of the warning rule, and the status of the period before.",
)
class IndicatorValueExplanation(_Strict):
    indicator: Literal["conversion", "stall", "response"]
    granularity: Literal["day", "week"]
    period_start: str
    evaluated_at: str = Field(description="the instant the value was computed for (period end, or now)")
    scope: dict[str, Any] = Field(description="{kind, id, label}")
    formula: str
    numerator: float
    denominator: int
    value: float | None
    inputs: dict[str, Any] = Field(description="the formula's parts: window, per-stage table, 报价谈判 rates")
    thresholds: dict[str, Any] = Field(description="the thresholds version in force and its numbers")
    status: Literal["healthy", "watch", "warning", "no_data"]
    rule: str = Field(description="the rule that decided the status")
    checks: list[dict[str, Any]]
    previous_status: str = Field(description="status of the period before (entering warning needs it)")
    entered_warning: bool
    suggested_response: str
