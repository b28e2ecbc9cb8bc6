"""The `assignment` explanation (C8.2): the whole path of one routing decision."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from salesloop.core.explanations import register


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConditionCheck(_Strict):
    field: str = Field(description="source, province, region, industry, city, fields.<name>, weekday or time")
    expected: Any = Field(description="what the rule asks for")
    actual: Any = Field(description="what the lead had")
    ok: bool


class CandidateTrace(_Strict):
    user_id: int
    kept: bool
    reason: Literal[
        "eligible",
        "inactive",
        "on_leave",
        "off_hours",
        "open_cap",
        "daily_cap",
        "other_region",
        "no_specialty",
        "no_weight",
    ] = Field(description="why the rep was kept or dropped")
    detail: str = Field(default="", description="the numbers behind the reason, e.g. open leads 300/300")
    open_leads: int
    new_today: int
    winner: bool = False


class RuleTrace(_Strict):
    id: str
    name: str
    priority: int | None = Field(description="null for the fallback rule")
    strategy: str
    matched: bool | None = Field(description="null when an earlier rule had already decided")
    outcome: Literal["winner", "no_candidate", "not_matched", "not_reached"]
    conditions: list[ConditionCheck]
    candidates: list[CandidateTrace]


class WinnerTrace(_Strict):
    user_id: int
    username: str
    name: str
    why: dict[str, Any] | None = Field(
        description="code turn (previous_user_id, eligible), weighted (weight, given_before, "
        "total_weight), least_loaded (open_leads, tied) or manual (reason)"
    )


@register(
    "assignment",
    version=1,
    summary="Why a lead went to its owner: the rule set version that ran (and the A/B arm), each rule "
    "evaluated with its conditions, the candidates with the reason each was kept or dropped, and why "
    "the winner won. A manual reassignment has method `manual`, the person and the reason.",
)
class AssignmentExplanation(_Strict):
    ruleset: dict[str, Any] | None = Field(
        description="{id, version, name, arm}; null for a manual assignment"
    )
    lead: dict[str, Any] = Field(
        description="the facts routing read: source, province, region, industry, city, at"
    )
    rules: list[RuleTrace]
    rule_id: str
    strategy: str
    method: Literal["rule", "fallback", "pool", "manual"]
    winner: WinnerTrace | None = Field(
        description="null when nobody was eligible: the lead waits in the pool"
    )
    actor: dict[str, Any] | None = None
    reason: str = ""
