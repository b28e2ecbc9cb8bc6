"""Funnel heat map and cycle time by API (SPEC C5): `GET /api/v1/insights/funnel`, its drill-down
`/insights/funnel/leads` and `/insights/cycle`. Thin: the filters are typed here, authorised and
resolved by `funnel.funnel_query_parse` (404 for a region, team or rep out of scope), and the
numbers come from the same selectors as the page."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from salesloop.core.schemas import RecordId, Text
from salesloop.crm.models import Channel
from salesloop.insights import cycle, funnel, funnel_drill

router = Router()  # mounted at /insights


class FunnelParams(Schema):
    scope: Literal["org", "region", "team", "rep"] | None = Field(
        default=None, description="default: rep → own funnel, manager → own region, others → org"
    )
    region: RecordId | None = None
    team: RecordId | None = None
    rep: RecordId | None = None
    source: Channel | None = None
    start: dt.date | None = Field(
        default=None, description="first day (Asia/Shanghai); default end − 89 days"
    )
    end: dt.date | None = Field(default=None, description="last day, inclusive; default today")


class HeatParams(FunnelParams):
    cross: Literal["region", "rep"] | None = Field(default=None, description="add stages × regions or × reps")


class DrillParams(FunnelParams):
    stage: Text(40) = Field(description="stage code, e.g. solution_demo")  # type: ignore[valid-type]
    kind: Literal["piled", "passed"] = Field(
        default="piled", description="piled: open in the stage now; passed: entered it in the period"
    )
    cell_region: int | None = Field(default=None, ge=0, le=2**63 - 1, description="cross-view row (0: none)")
    cell_rep: int | None = Field(default=None, ge=0, le=2**63 - 1, description="cross-view row (0: nobody)")
    cursor: Text(200) | None = None  # type: ignore[valid-type]
    limit: int | None = Field(default=None, ge=1, le=200, description="page size (default 50)")


def _params(params: FunnelParams) -> dict[str, Any]:
    raw = params.dict()
    return {
        key: (
            value.value
            if hasattr(value, "value")
            else value.isoformat()
            if hasattr(value, "isoformat")
            else value
        )
        for key, value in raw.items()
        if value is not None
    }


def _query(request: HttpRequest, params: FunnelParams) -> funnel.FunnelQuery:
    return funnel.funnel_query_parse(user=request.auth, params=_params(params))  # type: ignore[attr-defined]


def _days(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _share(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _stage_out(row: funnel.StageRow) -> dict[str, Any]:
    return {
        "stage": row.code,
        "label": row.label,
        "piled_up": row.piled_up,
        "pile_age_days": _days(row.pile_age_days),
        "passed": row.passed,
        "converted": row.converted,
        "conversion": _share(row.conversion),
        "exits": row.exits,
        "dwell_mean_days": _days(row.dwell_mean_days),
        "dwell_median_days": _days(row.dwell_median_days),
        "backward": row.backward,
        "backward_rate": _share(row.backward_rate),
    }


def _query_out(query: funnel.FunnelQuery) -> dict[str, Any]:
    return {
        "scope": query.scope,
        "region": query.region_id,
        "team": query.team_id,
        "rep": query.rep_id,
        "source": query.source,
        "start": query.start,
        "end": query.end,
    }


@router.get("/funnel", summary="Funnel heat map: per stage, for a scope, source and period (C5.1)")
def funnel_get(request: HttpRequest, params: Query[HeatParams]) -> dict[str, Any]:
    """Per stage: `piled_up` (open leads in it now) and `pile_age_days` (their mean time in it so
    far); over the period: `passed` (stays begun), `conversion` (share of those that moved forward),
    `dwell_mean_days` / `dwell_median_days` (stays that ended in the period; median from a
    histogram, see docs/insights.md), `backward_rate` (backward moves ÷ moves out)."""
    query = _query(request, params)
    language = request.LANGUAGE_CODE if hasattr(request, "LANGUAGE_CODE") else "zh-hans"
    heat = funnel.funnel_heat(query=query, language=language)
    out: dict[str, Any] = {
        "query": _query_out(query),
        "stages": [_stage_out(r) for r in heat.stages],
        "cross": None,
    }
    if params.cross:
        cross = funnel.funnel_cross(query=query, by=params.cross, language=language)
        rows = [
            {"key": row.key, "label": row.label, "cells": [_stage_out(c) for c in row.cells]}
            for row in cross.rows
        ]
        out["cross"] = {"by": cross.by, "rows": rows}
    return out


@router.get("/funnel/leads", summary="The leads behind a heat-map cell (C5.2)")
def funnel_leads(request: HttpRequest, params: Query[DrillParams]) -> dict[str, Any]:
    query = _query(request, params)
    cell = funnel_drill.DrillCell(params.stage, params.kind, params.cell_region, params.cell_rep)
    page = funnel_drill.funnel_drill(
        user=request.auth,  # type: ignore[attr-defined]
        query=query,
        cell=cell,
        cursor=params.cursor,
        limit=params.limit or settings.SALESLOOP_PAGE_SIZE,
    )
    return {
        "items": [
            {
                "id": lead.pk,
                "title": lead.title,
                "customer": lead.customer.name,
                "owner": {"id": lead.owner_id, "name": str(lead.owner)} if lead.owner_id else None,
                "stage": lead.stage.code,
                "status": lead.status,
                "stage_entered_at": lead.stage_entered_at,
                "health_score": lead.health_score,
                "last_touch_at": lead.last_touch_at,
            }
            for lead in page.items
        ],
        "next_cursor": page.next_cursor,
    }


@router.get("/cycle", summary="Lead cycle time by week and against the previous period (C5.3)")
def cycle_get(request: HttpRequest, params: Query[FunnelParams]) -> dict[str, Any]:
    """`series`: mean days per week — `arrival_to_won` (lead created → won, on the won week) and per
    stage its stays that ended with a forward move. `current` / `previous`: the period and the one
    of the same length before it; `change_days` = current − previous (negative: shorter)."""
    query = _query(request, params)
    language = request.LANGUAGE_CODE if hasattr(request, "LANGUAGE_CODE") else "zh-hans"
    trend = cycle.cycle_trend(query=query, language=language)
    return {
        "query": _query_out(query),
        "weeks": trend.weeks,
        "series": [
            {"key": s.key, "label": s.label, "days": s.days, "counts": s.counts} for s in trend.series
        ],
        "current": trend.current.__dict__,
        "previous": trend.previous.__dict__,
        "change_days": _days(trend.change_days),
        "sentence": trend.sentence,
    }
