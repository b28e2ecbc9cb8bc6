"""Pages of the leading indicators (SPEC C9, C5 charts): three cards with the current value, status,
a sparkline with the healthy and warning lines and the inputs; the leads behind a value; and the
thresholds page where an admin publishes a new version."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from salesloop.crm.selectors import FilterError
from salesloop.insights.indicators import selectors
from salesloop.insights.indicators.alerts import value_text
from salesloop.insights.indicators.responses import RESPONSE_LABELS, RULE_LABELS, SUGGESTED_RESPONSES
from salesloop.insights.indicators.thresholds import (
    DEFAULTS,
    FIELDS,
    indicator_thresholds_create,
    may_configure,
    thresholds_in_force,
)
from salesloop.insights.models.indicators import Granularity, Indicator, IndicatorThresholds

STAGE_NAMES = ["初筛", "需求确认", "方案演示", "报价谈判", "合同签署"]


def _card(indicator: str, points: list[selectors.PointView], thresholds: Any) -> dict[str, Any]:
    current = points[-1]
    is_stall = indicator == Indicator.STALL
    healthy = thresholds.stall_healthy_days if is_stall else getattr(thresholds, f"{indicator}_healthy")
    warning = thresholds.stall_warning_days if is_stall else getattr(thresholds, f"{indicator}_warning")
    scale = 1 if is_stall else 100  # rates drawn in percent
    return {
        "indicator": indicator,
        "label": Indicator(indicator).label,
        "current": current,
        "value_text": value_text(indicator, current.value),
        "rule_text": RULE_LABELS.get(current.rule, ""),
        "response": RESPONSE_LABELS[SUGGESTED_RESPONSES[Indicator(indicator)]],
        "chart": {
            "x": [p.period.label() for p in points],
            "y": [None if p.value is None else round(p.value * scale, 2) for p in points],
            "status": [p.status for p in points],
            "healthy": round(healthy * scale, 2),
            "warning": round(warning * scale, 2),
            "unit": _("days") if is_stall else "%",
        },
        "healthy_text": value_text(indicator, healthy),
        "warning_text": value_text(indicator, warning),
    }


@login_required
@require_GET
def indicators_page(request: HttpRequest) -> HttpResponse:
    """C9: the three indicators of a scope, live from the facts, with their recent series."""
    error = ""
    granularity = request.GET.get("granularity") or Granularity.WEEK
    if granularity not in Granularity.values:
        error = _("Granularity: choose daily or weekly.")
        granularity = Granularity.WEEK
    try:
        scope = selectors.scope_parse(user=request.user, text=request.GET.get("scope") or None)
    except FilterError as exc:
        error = _("Scope: %(message)s") % {"message": exc}
        scope = selectors.scope_parse(user=request.user, text=None)
    series = selectors.indicator_series(scope=scope, granularity=granularity)
    thresholds = thresholds_in_force()
    cards = [_card(indicator, series[indicator], thresholds) for indicator in Indicator.values]
    return render(
        request,
        "insights/indicators/page.html",
        {
            "cards": cards,
            "scope": scope,
            "scope_typed": request.GET.get("scope", scope.key),
            "scopes": selectors.scopes_visible(request.user),
            "granularity": granularity,
            "granularities": Granularity.choices,
            "error": error,
            "thresholds": thresholds,
            "may_configure": may_configure(request.user),
            "stage_names": STAGE_NAMES,
        },
        status=200,
    )


@login_required
@require_GET
def indicator_leads_page(request: HttpRequest) -> HttpResponse:
    """The records a value counted (a manager checks the value by hand): keyset-paginated, scoped."""
    try:
        scope = selectors.scope_parse(user=request.user, text=request.GET.get("scope") or None)
        granularity = request.GET.get("granularity") or Granularity.WEEK
        period = selectors.period_parse(granularity=granularity, text=request.GET.get("period"))
        indicator = request.GET.get("indicator") or ""
        part = request.GET.get("part") or "denominator"
        page = selectors.counted_records(
            user=request.user,
            scope=scope,
            indicator=indicator,
            period=period,
            part=part,
            cursor=request.GET.get("cursor") or None,
        )
    except FilterError as exc:
        return render(
            request,
            "insights/indicators/leads.html",
            {"error": f"{exc.field}: {exc}", "rows": [], "typed": request.GET},
            status=422,
        )
    query = request.GET.copy()
    query.pop("cursor", None)
    return render(
        request,
        "insights/indicators/leads.html",
        {
            "rows": page.items,
            "next_cursor": page.next_cursor,
            "query": query.urlencode(),
            "indicator_label": Indicator(indicator).label,
            "indicator": indicator,
            "scope": scope,
            "period": period,
            "part": part,
            "stage_names": dict(enumerate(["—", *STAGE_NAMES])),
        },
    )


def _form_values(data: Any) -> dict[str, str]:
    return {name: str(data.get(name, "")).strip() for name in FIELDS}


@login_required
@require_http_methods(["GET", "POST"])
def thresholds_page(request: HttpRequest) -> HttpResponse:
    """C9: the thresholds in force and their versions; admins and directors publish a new one."""
    if not may_configure(request.user):
        raise PermissionDenied
    in_force = thresholds_in_force()
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = _form_values(request.POST)
        effective = request.POST.get("effective_from", "").strip()
        effective_from = None
        if effective:
            try:
                from django.utils import timezone

                from salesloop.core import clock

                effective_from = timezone.make_aware(dt.datetime.fromisoformat(effective), clock.org_tz())
            except ValueError:
                errors["effective_from"] = _("Enter a date and time.")
        if not errors:
            try:
                indicator_thresholds_create(
                    actor=request.user,
                    values=values,
                    effective_from=effective_from,
                    note=request.POST.get("note", ""),
                )
            except ValidationError as exc:
                errors = {field: " ".join(msgs) for field, msgs in exc.message_dict.items()}
            else:
                messages.success(request, _("A new version of the thresholds is saved."))
                return redirect("insights-indicator-thresholds")
    else:
        values = {name: str(getattr(in_force, name)) for name in FIELDS}
    labels = {
        "conversion_healthy": _("Conversion: healthy at or above (fraction)"),
        "conversion_warning": _("Conversion: warning below (fraction, two weeks in a row)"),
        "conversion_window_days": _("Conversion: arrival window (days)"),
        "stall_healthy_days": _("Stall index: healthy at or below (days)"),
        "stall_warning_days": _("Stall index: warning above (days)"),
        "stall_demo_share": _("Stall index: warning when 方案演示 holds more than (fraction)"),
        "response_healthy": _("Response rate: healthy at or above (fraction)"),
        "response_warning": _("Response rate: warning below (fraction)"),
        "response_drop_points": _("Sharp drop at 报价谈判: fall of at least (points, fraction)"),
        "response_drop_relative": _("Sharp drop at 报价谈判: or relative fall of at least (fraction)"),
        "response_drop_min_touches": _("Sharp drop at 报价谈判: touches needed in each period"),
    }
    rows = [
        {
            "name": name,
            "label": labels[name],
            "value": values.get(name, ""),
            "error": errors.get(name, ""),
            "default": getattr(DEFAULTS, name),
        }
        for name in FIELDS
    ]
    return render(
        request,
        "insights/indicators/thresholds.html",
        {
            "rows": rows,
            "errors": errors,
            "in_force": in_force,
            "versions": IndicatorThresholds.objects.order_by("-version")[:50],
            "typed_effective": request.POST.get("effective_from", "") if request.method == "POST" else "",
            "typed_note": request.POST.get("note", "") if request.method == "POST" else "",
        },
        status=422 if errors else 200,
    )


__all__ = ["indicator_leads_page", "indicators_page", "thresholds_page"]
