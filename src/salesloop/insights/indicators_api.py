"""REST endpoints of the leading indicators (SPEC C9), under /api/v1/insights/indicators: the live
series with inputs, the leads behind a value, and the versioned thresholds. Thin: the page calls the
same selectors and services."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status

from salesloop.core import clock
from salesloop.core.schemas import Text
from salesloop.insights.indicators import selectors
from salesloop.insights.indicators.thresholds import (
    FIELDS,
    indicator_thresholds_create,
    may_configure,
    thresholds_in_force,
)
from salesloop.insights.models.indicators import IndicatorThresholds

router = Router()  # /insights/indicators


class PointOut(Schema):
    indicator: str
    granularity: str
    period_start: dt.date
    period_end: dt.date = Field(description="the day after the period's last day")
    value: float | None = Field(description="a fraction (0.38 = 38 %) or days (stall); null without data")
    numerator: float
    denominator: int
    status: Literal["healthy", "watch", "warning", "no_data"]
    rule: str
    rule_text: str
    entered_warning: bool = Field(description="in warning now and not in the period before")
    inputs: dict[str, Any] = Field(description="the formula's parts, to check the value by hand")
    thresholds_version: int
    leads_link: str = Field(description="page listing the records in the denominator")
    numerator_leads_link: str
    suggested_response: str
    suggested_response_text: str


class ScopeOut(Schema):
    key: str
    kind: str
    id: int
    label: str


class SeriesOut(Schema):
    scope: ScopeOut
    granularity: str
    thresholds: dict[str, Any]
    indicators: dict[str, list[PointOut]]


class CountedOut(Schema):
    id: int
    lead_id: int
    lead_title: str
    rank: int | None
    moment: dt.datetime | None
    in_numerator: bool
    dwell_days: float | None


class CountedPageOut(Schema):
    items: list[CountedOut]
    next_cursor: str | None


class ThresholdsIn(Schema):
    conversion_healthy: float = Field(0.38, ge=0, le=1)
    conversion_warning: float = Field(0.30, ge=0, le=1)
    conversion_window_days: int = Field(28, ge=1, le=366)
    stall_healthy_days: float = Field(4.2, ge=0, le=365)
    stall_warning_days: float = Field(5.5, ge=0, le=365)
    stall_demo_share: float = Field(0.45, ge=0, le=1)
    response_healthy: float = Field(0.61, ge=0, le=1)
    response_warning: float = Field(0.48, ge=0, le=1)
    response_drop_points: float = Field(0.15, ge=0, le=1)
    response_drop_relative: float = Field(0.25, ge=0, le=1)
    response_drop_min_touches: int = Field(10, ge=1, le=100_000)
    effective_from: dt.datetime | None = None
    note: Text(2000) = ""  # type: ignore[valid-type]


class ThresholdsOut(Schema):
    version: int
    effective_from: dt.datetime
    in_force: bool
    values: dict[str, float]
    note: str
    created_at: dt.datetime


def _thresholds_out(row: IndicatorThresholds, in_force_version: int) -> dict[str, Any]:
    return {
        "version": row.version,
        "effective_from": row.effective_from,
        "in_force": row.version == in_force_version,
        "values": {name: float(getattr(row, name)) for name in FIELDS},
        "note": row.note,
        "created_at": row.created_at,
    }


class SeriesQuery(Schema):
    scope: Text(60) | None = Field(  # type: ignore[valid-type]
        None, description="org, region:<code>, team:<id> or rep:<id>; your own by default"
    )
    granularity: Literal["day", "week"] = "week"
    date_from: dt.date | None = Field(None, alias="from", description="first day (default: 8 periods back)")
    date_to: dt.date | None = Field(None, alias="to", description="last day (default: today)")


class CountedQuery(Schema):
    indicator: Literal["conversion", "stall", "response"]
    period: dt.date = Field(description="a day in the period")
    granularity: Literal["day", "week"] = "week"
    scope: Text(60) | None = None  # type: ignore[valid-type]
    part: Literal["numerator", "denominator"] = "denominator"
    cursor: Text(200) | None = None  # type: ignore[valid-type]
    limit: int = Field(50, ge=1, le=200)


@router.get(
    "", response=SeriesOut, summary="Leading indicators of a scope: the series with inputs and status"
)
def indicators_series(request: HttpRequest, query: Query[SeriesQuery]) -> dict[str, Any]:
    user = request.auth  # type: ignore[attr-defined]
    where = selectors.scope_parse(user=user, text=query.scope)
    series = selectors.indicator_series(
        scope=where, granularity=query.granularity, first=query.date_from, last=query.date_to
    )
    return {
        "scope": {"key": where.key, "kind": where.kind, "id": where.id, "label": where.label},
        "granularity": query.granularity,
        "thresholds": thresholds_in_force().as_dict(),
        "indicators": {name: [p.as_json() for p in points] for name, points in series.items()},
    }


@router.get("/leads", response=CountedPageOut, summary="The leads (or touches) a value counted")
def indicator_leads(request: HttpRequest, query: Query[CountedQuery]) -> dict[str, Any]:
    user = request.auth  # type: ignore[attr-defined]
    where = selectors.scope_parse(user=user, text=query.scope)
    page = selectors.counted_records(
        user=user,
        scope=where,
        indicator=query.indicator,
        period=selectors.period_parse(granularity=query.granularity, text=query.period.isoformat()),
        part=query.part,
        cursor=query.cursor,
        limit=query.limit,
    )
    return {"items": [vars(item) for item in page.items], "next_cursor": page.next_cursor}


@router.get("/thresholds", response=list[ThresholdsOut], summary="Versions of the indicator thresholds")
def thresholds_list(request: HttpRequest) -> list[dict[str, Any]]:
    in_force = thresholds_in_force().version
    return [_thresholds_out(row, in_force) for row in IndicatorThresholds.objects.order_by("-version")[:100]]


@router.post("/thresholds", response={201: ThresholdsOut}, summary="A new version of the thresholds")
def thresholds_create(request: HttpRequest, payload: ThresholdsIn) -> Status[dict[str, Any]]:
    user = request.auth  # type: ignore[attr-defined]
    if not may_configure(user):
        raise PermissionDenied("Only a sales director or an administrator may change indicator thresholds.")
    values = payload.dict(exclude={"effective_from", "note"})
    effective_from = payload.effective_from
    if effective_from is not None and timezone.is_naive(effective_from):
        effective_from = timezone.make_aware(effective_from, clock.org_tz())
    row = indicator_thresholds_create(
        actor=user, values=values, effective_from=effective_from, note=payload.note
    )
    return Status(201, _thresholds_out(row, thresholds_in_force().version))
