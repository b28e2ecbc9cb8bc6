"""The funnel page (SPEC C5): `/insights/funnel` — filters as a GET form (htmx swaps the body),
the heat map as a coloured table whose cells load the leads behind them, the cross view, and the
cycle-time trend drawn with Plotly. Thin: the numbers come from `funnel`, `funnel_drill` and
`cycle`, which the API calls too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from salesloop.accounts.models import Region, Team, User
from salesloop.core.roles import Role, sees_all
from salesloop.crm.models import Channel
from salesloop.crm.selectors import CursorError, FilterError
from salesloop.insights import cycle, funnel, funnel_drill

# The heat map's columns: (measure, heading, drill kind, colour family, format).
COLUMNS = [
    ("piled_up", gettext_lazy("Piled up now"), "piled", "warm", "count"),
    ("pile_age_days", gettext_lazy("Days piled (mean)"), "piled", "warm", "days"),
    ("passed", gettext_lazy("Passed through"), "passed", "cool", "count"),
    ("conversion", gettext_lazy("Conversion to next stage"), "passed", "cool", "share"),
    ("dwell_mean_days", gettext_lazy("Dwell days (mean)"), "passed", "warm", "days"),
    ("dwell_median_days", gettext_lazy("Dwell days (median)"), "passed", "warm", "days"),
    ("backward_rate", gettext_lazy("Backward-move rate"), "passed", "warm", "share"),
]


@dataclass(frozen=True)
class Cell:
    text: str
    level: float  # 0..1, the colour's strength
    family: str  # warm (more is worse) | cool (more is better)
    drill_url: str
    label: str  # what a screen reader announces for the button


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "count":
        return f"{value:,}"
    if kind == "share":
        return f"{value * 100:.0f}%"
    return f"{value:.1f}"


def _levels(values: list[Any], kind: str) -> list[float]:
    if kind == "share":
        return [float(v) if v is not None else 0.0 for v in values]
    top = max((v for v in values if v is not None), default=0) or 0
    return [float(v) / top if v is not None and top else 0.0 for v in values]


def _drill_url(query: funnel.FunnelQuery, **cell: Any) -> str:
    params = {**query.as_params(), **{k: v for k, v in cell.items() if v is not None}}
    return reverse("insights-funnel-leads") + "?" + urlencode(params)


def _heat_rows(heat: funnel.FunnelHeat) -> list[tuple[str, list[Cell]]]:
    columns: list[list[Cell]] = []
    for name, heading, kind, family, fmt in COLUMNS:
        values = [getattr(row, name) for row in heat.stages]
        levels = _levels(values, fmt)
        columns.append(
            [
                Cell(
                    _fmt(value, fmt),
                    round(level, 3),
                    family,
                    _drill_url(heat.query, stage=row.code, kind=kind),
                    f"{row.label} · {heading}: {_fmt(value, fmt)}",
                )
                for row, value, level in zip(heat.stages, values, levels, strict=True)
            ]
        )
    return [(row.label, [column[i] for column in columns]) for i, row in enumerate(heat.stages)]


def _cross_rows(
    query: funnel.FunnelQuery, cross: funnel.FunnelCross, measure: str
) -> list[tuple[str, list[Cell]]]:
    """One measure of the heat map (a column of COLUMNS) in every cell of the cross view, coloured
    against the other cells of the view; each cell drills down to its region's or rep's leads."""
    name, heading, kind, family, fmt = next(c for c in COLUMNS if c[0] == measure)
    values = [getattr(c, name) for row in cross.rows for c in row.cells]
    levels = iter(_levels(values, fmt))
    extra = "cell_region" if cross.by == "region" else "cell_rep"
    rows = []
    for row in cross.rows:
        cells = []
        for c in row.cells:
            text = _fmt(getattr(c, name), fmt)
            cells.append(
                Cell(
                    text,
                    round(next(levels), 3),
                    family,
                    _drill_url(query, stage=c.code, kind=kind, **{extra: row.key}),
                    f"{row.label} · {c.label} · {heading}: {text}",
                )
            )
        rows.append((row.label, cells))
    return rows


def _choices(user: Any) -> dict[str, list[tuple[str, str]]]:
    """What the filter form offers this user: only what they may ask for."""
    scopes: list[tuple[str, str]] = []
    if sees_all(user):
        scopes.append(("org", _("Whole organisation")))
    if sees_all(user) or user.role == Role.MANAGER:
        scopes += [("region", _("Region")), ("team", _("Team")), ("rep", _("Rep"))]
    else:
        scopes.append(("rep", _("My leads")))
    regions = Region.objects.all() if sees_all(user) else Region.objects.filter(pk=user.region_id)
    teams = Team.objects.all() if sees_all(user) else Team.objects.filter(region_id=user.region_id)
    reps = User.objects.filter(role=Role.REP, is_active=True)
    if not sees_all(user):
        reps = reps.filter(region_id=user.region_id) if user.role == Role.MANAGER else reps.filter(pk=user.pk)
    return {
        "scopes": scopes,
        "regions": [(str(r.pk), r.name) for r in regions],
        "teams": [(str(t.pk), t.name) for t in teams],
        "reps": [(str(u.pk), str(u)) for u in reps.order_by("username")],
        "sources": [(value, str(label)) for value, label in Channel.choices],
        "crosses": [("", _("None")), ("region", _("Stages × regions")), ("rep", _("Stages × reps"))],
        "measures": [(name, str(heading)) for name, heading, _k, _f, _fmt in COLUMNS],
    }


def _chart(trend: cycle.CycleTrend) -> dict[str, Any]:
    return {
        "weeks": [w.isoformat() for w in trend.weeks],
        "series": [
            {"key": s.key, "label": s.label, "days": s.days, "counts": s.counts} for s in trend.series
        ],
        "y_title": _("Days"),
    }


@login_required
@require_GET
def funnel_page(request: HttpRequest) -> HttpResponse:
    """C5.1–C5.3 on one page. A bad filter re-renders the form with the error and what was typed
    (400); a scope outside the user's own is a 404 (raised by `funnel_query_parse`)."""
    typed = {key: request.GET.get(key, "").strip()[:40] for key in funnel.SCOPES_PARAMS}
    language = get_language() or "zh-hans"
    context: dict[str, Any] = {"typed": typed, "choices": _choices(request.user), "error": None}
    status = 200
    try:
        cross_by = typed["cross"] or None
        if cross_by is not None and cross_by not in funnel.CROSSES:
            raise FilterError("cross", f"cross must be one of {', '.join(funnel.CROSSES)}")
        measure = typed["measure"] or COLUMNS[0][0]
        if measure not in {c[0] for c in COLUMNS}:
            raise FilterError("measure", f"measure must be one of {', '.join(c[0] for c in COLUMNS)}")
        query = funnel.funnel_query_parse(user=request.user, params=request.GET)
    except FilterError as exc:
        context["error"] = {"field": exc.field, "message": str(exc)}
        status = 400
    else:
        heat = funnel.funnel_heat(query=query, language=language)
        trend = cycle.cycle_trend(query=query, language=language)
        context.update(
            query=query,
            columns=[(heading, family) for _n, heading, _k, family, _f in COLUMNS],
            heat_rows=_heat_rows(heat),
            trend=trend,
            chart=_chart(trend),
            chart_table=list(zip(trend.weeks, *(s.days for s in trend.series), strict=True)),
        )
        if cross_by:
            cross = funnel.funnel_cross(query=query, by=cross_by, language=language)
            measure_heading = next(heading for n, heading, *_rest in COLUMNS if n == measure)
            context.update(
                cross=cross, cross_rows=_cross_rows(query, cross, measure), measure=measure_heading
            )
        # what the form shows: the resolved scope, with the defaults filled in
        context["typed"] = {**typed, **query.as_params(), "measure": measure}
    htmx = getattr(request, "htmx", None)
    fragment = bool(htmx) and not htmx.history_restore_request and htmx.target == "funnel-body"
    template = "insights/_funnel_body.html" if fragment else "insights/funnel.html"
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
@require_GET
def funnel_leads_page(request: HttpRequest) -> HttpResponse:
    """C5.2: the leads behind a cell, as a fragment (htmx) — a keyset page with a "more" link."""
    problems: list[str] = []
    leads: list[Any] = []
    next_url = ""
    try:
        query = funnel.funnel_query_parse(user=request.user, params=request.GET)
        cell = funnel_drill.drill_cell_parse(request.GET)
        page = funnel_drill.funnel_drill(
            user=request.user, query=query, cell=cell, cursor=request.GET.get("cursor", "").strip() or None
        )
    except CursorError:
        problems.append(_("This page link is not valid any more. Start again from the first page."))
    except FilterError as exc:
        problems.append(f"{exc.field}: {exc}")
    else:
        leads = page.items
        if page.next_cursor:
            params = request.GET.copy()
            params["cursor"] = page.next_cursor
            next_url = reverse("insights-funnel-leads") + "?" + params.urlencode()
    more = bool(request.GET.get("cursor"))
    return render(
        request,
        "insights/_funnel_leads.html",
        {"leads": leads, "next_url": next_url, "problems": problems, "more": more},
        status=400 if problems else 200,
    )
