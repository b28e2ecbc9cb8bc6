"""The sandbox's fairness report page (C8.4), its progress bar, and stopping an A/B test."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from salesloop.accounts.geography import PROVINCES
from salesloop.accounts.models import Region
from salesloop.routing import sandbox, services
from salesloop.routing.fairness import finding_sentence
from salesloop.routing.models import (
    ReportKind,
    ReportStatus,
    RoutingReport,
)
from salesloop.routing.views.common import (
    _error_pairs,
    _render,
    may_write,
)

PROVINCE_NAMES = dict(PROVINCES)


# --- reports --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricRow:
    label: str
    current: str
    candidate: str
    change: str
    finding: str  # "" | warn | block: what the sandbox said about this metric


@dataclass(frozen=True)
class RepBar:
    name: str
    region: str
    current: str
    candidate: str
    current_width: str  # CSS width, never localised
    candidate_width: str
    flagged: bool
    top_province: str


@dataclass(frozen=True)
class HeatCell:
    share: float
    label: str
    level: str  # CSS custom property value 0..1
    flagged: bool


@dataclass(frozen=True)
class HeatTable:
    provinces: list[str]
    rows: list[tuple[str, list[HeatCell]]]


@dataclass(frozen=True)
class FindingLine:
    text: str
    severity: str


# metric key, label, kind, the finding code that speaks of it
METRICS = (
    ("region_match_rate", gettext_lazy("Region match rate"), "rate", "region_match_down"),
    ("industry_match_rate", gettext_lazy("Industry match rate"), "rate", "industry_match_down"),
    ("gini", gettext_lazy("Load imbalance (Gini)"), "number", "gini_up"),
    (
        "conversion_deviation",
        gettext_lazy("Deviation of conversion rates"),
        "number",
        "conversion_deviation_up",
    ),
    ("duplicate_rate", gettext_lazy("Duplicate rate"), "rate", "duplicate_rate_up"),
    ("unassigned", gettext_lazy("Unassigned leads"), "count", "unassigned_up"),
    ("assigned", gettext_lazy("Assigned leads"), "count", ""),
)


def _percent(value: Any, digits: int = 1) -> str:
    return f"{float(value) * 100:.{digits}f}%" if isinstance(value, int | float | Decimal) else "—"


def _metric(value: Any, kind: str) -> str:
    if not isinstance(value, int | float | Decimal):
        return "—"
    if kind == "rate":
        return _percent(value)
    if kind == "count":
        return f"{int(value):,}"
    return f"{float(value):.3f}"


def _change(current: Any, candidate: Any, kind: str) -> str:
    if not all(isinstance(v, int | float | Decimal) for v in (current, candidate)):
        return ""
    delta = float(candidate) - float(current)
    if kind == "rate":
        return _("%(delta)s pts") % {"delta": f"{delta * 100:+.1f}"}
    if kind == "count":
        return f"{int(delta):+,}"
    return f"{delta:+.3f}"


def _rep_bars(current: dict[str, Any], candidate: dict[str, Any], regions: dict[str, str]) -> list[RepBar]:
    before = {r["user_id"]: r for r in current.get("reps", [])}
    after = {r["user_id"]: r for r in candidate.get("reps", [])}
    ids = sorted(
        set(before) | set(after),
        key=lambda u: (-max(after.get(u, {}).get("share", 0), before.get(u, {}).get("share", 0)), u),
    )
    scale = max([float(r.get("share", 0)) for r in [*before.values(), *after.values()]] + [0.0]) or 1.0
    bars = []
    for user_id in ids:
        old, new = before.get(user_id, {}), after.get(user_id, {})
        either = new or old
        old_share, new_share = float(old.get("share", 0)), float(new.get("share", 0))
        top = ""
        if new.get("top_province_name") and new.get("top_province_share") is not None:
            top = f"{new['top_province_name']} {_percent(new['top_province_share'], 0)}"
        bars.append(
            RepBar(
                name=str(either.get("name", f"#{user_id}")),
                region=regions.get(str(either.get("region")), str(either.get("region") or "")),
                current=_percent(old_share) if old else "—",
                candidate=_percent(new_share) if new else "—",
                current_width=f"{old_share / scale * 100:.1f}%",
                candidate_width=f"{new_share / scale * 100:.1f}%",
                flagged=bool(new.get("flagged")),
                top_province=top,
            )
        )
    return bars


def _heat_table(side: dict[str, Any]) -> HeatTable:
    shares: dict[str, dict[str, float]] = side.get("province_shares") or {}
    flagged = {(str(f.get("user_id")), str(f.get("province"))) for f in side.get("flags", [])}
    names = {str(r["user_id"]): str(r.get("name", "")) for r in side.get("reps", [])}
    provinces = sorted({code for row in shares.values() for code in row})
    rows = []
    for user_id, row in sorted(shares.items(), key=lambda item: names.get(item[0], item[0])):
        cells = []
        for code in provinces:
            share = float(row.get(code, 0))
            cells.append(
                HeatCell(
                    share=share,
                    label=_percent(share, 0) if share else "",
                    level=f"{min(max(share, 0.0), 1.0):.2f}",
                    flagged=(user_id, code) in flagged,
                )
            )
        rows.append((names.get(user_id, f"#{user_id}"), cells))
    return HeatTable(provinces=[PROVINCE_NAMES.get(code, code) for code in provinces], rows=rows)


def _report_context(report: RoutingReport) -> dict[str, Any]:
    metrics = report.metrics or {}
    current, candidate = metrics.get("current") or {}, metrics.get("candidate") or {}
    severities: dict[str, str] = {}
    for finding in report.findings or []:
        code = finding.get("code", "")
        if severities.get(code) != "block":
            severities[code] = finding.get("severity", "warn")
    rows = [
        MetricRow(
            label=str(label),
            current=_metric(current.get(key), kind),
            candidate=_metric(candidate.get(key), kind),
            change=_change(current.get(key), candidate.get(key), kind),
            finding=severities.get(code, "") if code else "",
        )
        for key, label, kind, code in METRICS
    ]
    findings = sorted(
        (
            FindingLine(text=finding_sentence(f), severity=f.get("severity", "warn"))
            for f in report.findings or []
        ),
        key=lambda f: f.severity != "block",
    )
    return {
        "report": report,
        "window": metrics.get("window") or {},
        "metric_rows": rows,
        "findings": findings,
        "blocking": any(f.severity == "block" for f in findings),
        "rep_bars": _rep_bars(current, candidate, dict(Region.objects.values_list("code", "name"))),
        "heat_candidate": _heat_table(candidate),
        "heat_current": _heat_table(current),
        "done": report.status == ReportStatus.DONE,
        "section": "versions",
    }


def _report_page_context(request: HttpRequest, report: RoutingReport) -> dict[str, Any]:
    running_ab = report.kind == ReportKind.AB and report.status == ReportStatus.RUNNING
    policy = services.policy_get()
    return _report_context(report) | {
        "margin": _percent(policy.region_match_margin),
        "province_limit": _percent(policy.province_share_limit, 0),
        "may_stop": running_ab and report.stopped_at is None and may_write(request.user),
    }


@login_required
@require_GET
def report_page(request: HttpRequest, report_id: int) -> HttpResponse:
    """Current against candidate: what got worse in plain words, the numbers side by side, each
    rep's share of leads and of each province. Linked from the committee's notification."""
    report = sandbox.report_fresh(sandbox.report_get(user=request.user, report_id=report_id))
    return _render(request, "routing/report.html", _report_page_context(request, report))


@login_required
@require_GET
def report_progress_page(request: HttpRequest, report_id: int) -> HttpResponse:
    """The progress bar htmx polls (leads_done / leads_total) until the report is done."""
    report = sandbox.report_fresh(sandbox.report_get(user=request.user, report_id=report_id))
    return _render(request, "routing/_report_progress.html", {"report": report})


@login_required
@require_POST
def ab_test_stop_page(request: HttpRequest, report_id: int) -> HttpResponse:
    """End a live A/B test now: from this moment every new lead follows the version in force."""
    report = sandbox.report_get(user=request.user, report_id=report_id)
    if not may_write(request.user):
        raise PermissionDenied("only directors and administrators run the routing sandbox")
    try:
        sandbox.ab_test_stop(actor=request.user, report=report)
    except ValidationError as exc:
        context = _report_page_context(request, sandbox.report_fresh(report))
        context["stop_problems"] = [message for _key, message in _error_pairs(exc)]
        return _render(request, "routing/report.html", context, status=422)
    messages.success(request, _("The A/B test is stopped; every new lead follows the version in force."))
    return redirect("routing-report", report_id=report.pk)
