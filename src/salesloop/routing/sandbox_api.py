"""REST endpoints of the routing sandbox (C8.4): simulate a version over past leads, run a live A/B
test, and read the fairness reports. Thin: the work is in routing.sandbox."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import Http404, HttpRequest
from ninja import Field, Query, Router, Schema, Status

from salesloop.core.schemas import RecordId
from salesloop.routing import sandbox, selectors
from salesloop.routing.fairness import finding_sentence
from salesloop.routing.models import RoutingReport

router = Router()


class SimulateIn(Schema):
    days: int | None = Field(
        default=None, ge=1, le=sandbox.MAX_WINDOW_DAYS, description="replay this many days back (default 90)"
    )
    window_start: dt.datetime | None = Field(default=None, description="or replay from this moment")
    window_end: dt.datetime | None = Field(default=None, description="up to this moment (default now)")


class AbTestIn(Schema):
    share: float | None = Field(
        default=None, gt=0, lt=1, description="share of new leads routed by the candidate (default 0.1)"
    )
    days: int | None = Field(default=None, ge=1, le=sandbox.AB_MAX_DAYS, description="how long (default 14)")
    ends_at: dt.datetime | None = Field(default=None, description="or until this moment")


class ReportListQuery(Schema):
    ruleset_id: RecordId | None = None


class ReportSummaryOut(Schema):
    id: int
    ruleset_id: int
    ruleset_version: int
    ruleset_name: str
    baseline: dict[str, Any] | None
    kind: str
    status: str
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    share: float | None
    leads_total: int
    leads_done: int
    progress: float = Field(description="leads_done ÷ leads_total, 0..1, for a progress bar")
    findings: list[dict[str, Any]]
    summary: list[str] = Field(description="each finding in plain words, in the reader's language")
    region_match_drop: float | None
    worse: bool
    error: str
    created_by_id: int | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    stopped_at: dt.datetime | None


class ReportOut(ReportSummaryOut):
    metrics: dict[str, Any] = Field(description="current and candidate sides: see routing.fairness")


def _summary(report: RoutingReport) -> dict[str, Any]:
    baseline = report.baseline
    return {
        "id": report.pk,
        "ruleset_id": report.ruleset_id,
        "ruleset_version": report.ruleset.version,
        "ruleset_name": report.ruleset.name,
        "baseline": (
            {"id": baseline.pk, "version": baseline.version, "name": baseline.name} if baseline else None
        ),
        "kind": report.kind,
        "status": report.status,
        "window_start": report.window_start,
        "window_end": report.window_end,
        "share": float(report.share) if report.share is not None else None,
        "leads_total": report.leads_total,
        "leads_done": report.leads_done,
        "progress": (
            1.0
            if report.status == "done"
            else min(1.0, report.leads_done / report.leads_total)
            if report.leads_total
            else 0.0
        ),
        "findings": report.findings,
        "summary": [finding_sentence(f) for f in report.findings if isinstance(f, dict)],
        "region_match_drop": report.region_match_drop,
        "worse": report.worse,
        "error": report.error,
        "created_by_id": report.created_by_id,
        "created_at": report.created_at,
        "finished_at": report.finished_at,
        "stopped_at": report.stopped_at,
    }


def _out(report: RoutingReport) -> dict[str, Any]:
    return {**_summary(report), "metrics": report.metrics}


@router.post(
    "/rulesets/{ruleset_id}/simulate",
    response={202: ReportOut},
    summary="Replay past leads through the version and the one in force; the report fills in as it runs",
)
def ruleset_simulate(request: HttpRequest, ruleset_id: RecordId, payload: SimulateIn) -> Status:
    user = request.auth  # type: ignore[attr-defined]
    ruleset = selectors.ruleset_get(user=user, ruleset_id=ruleset_id)
    report = sandbox.simulate_start(
        actor=user,
        ruleset=ruleset,
        days=payload.days,
        window_start=payload.window_start,
        window_end=payload.window_end,
    )
    return Status(202, _out(sandbox.report_get(user=user, report_id=report.pk)))


@router.post(
    "/rulesets/{ruleset_id}/ab-test",
    response={201: ReportOut},
    summary="Route a share of new leads by the version for a period (a live A/B test)",
)
def ruleset_ab_test(request: HttpRequest, ruleset_id: RecordId, payload: AbTestIn) -> Status:
    user = request.auth  # type: ignore[attr-defined]
    ruleset = selectors.ruleset_get(user=user, ruleset_id=ruleset_id)
    report = sandbox.ab_test_start(
        actor=user, ruleset=ruleset, share=payload.share, days=payload.days, ends_at=payload.ends_at
    )
    return Status(201, _out(sandbox.report_get(user=user, report_id=report.pk)))


@router.post("/reports/{report_id}/stop", response=ReportOut, summary="Stop a running A/B test now")
def report_stop(request: HttpRequest, report_id: RecordId) -> dict[str, Any]:
    user = request.auth  # type: ignore[attr-defined]
    report = sandbox.report_get(user=user, report_id=report_id)
    sandbox.ab_test_stop(actor=user, report=report)
    return _out(sandbox.report_get(user=user, report_id=report_id))


@router.get(
    "/reports/{report_id}", response=ReportOut, summary="A sandbox report: fairness of current vs candidate"
)
def report_detail(request: HttpRequest, report_id: RecordId) -> dict[str, Any]:
    user = request.auth  # type: ignore[attr-defined]
    return _out(sandbox.report_fresh(sandbox.report_get(user=user, report_id=report_id)))


@router.get("/reports", response=list[ReportSummaryOut], summary="Sandbox reports, newest first")
def report_list(request: HttpRequest, query: Query[ReportListQuery]) -> list[dict[str, Any]]:
    user = request.auth  # type: ignore[attr-defined]
    if not sandbox.may_read_reports(user):
        raise Http404("no reports")
    return [_summary(r) for r in sandbox.reports_visible_to(user=user, ruleset_id=query.ruleset_id)]
