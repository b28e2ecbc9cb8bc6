"""Evaluating the leading indicators (SPEC C9): per period, granularity and scope, stored as
`IndicatorValue` facts with their inputs and explanation; re-evaluating replaces the same rows."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django.db import transaction
from django.urls import reverse

from salesloop.accounts.models import Region, Team, User
from salesloop.core import clock, explanations
from salesloop.core.roles import Role
from salesloop.insights.indicators import explanations as _explanations  # noqa: F401  (registers the kind)
from salesloop.insights.indicators.compute import Scope, Series
from salesloop.insights.indicators.periods import Period, period_of
from salesloop.insights.indicators.responses import FORMULAS, SUGGESTED_RESPONSES
from salesloop.insights.indicators.thresholds import Thresholds, thresholds_in_force
from salesloop.insights.models.indicators import Indicator, IndicatorValue, ScopeKind

KEY_FIELDS = ["indicator", "granularity", "period_start", "scope_kind", "scope_id", "thresholds_version"]
VALUE_FIELDS = [
    "value",
    "numerator",
    "denominator",
    "status",
    "entered_warning",
    "explanation",
    "drill_link",
    "suggested_response",
    "evaluated_at",
]


def drill_link(*, indicator: str, period: Period, scope: Scope, part: str = "denominator") -> str:
    query = {
        "indicator": indicator,
        "granularity": period.granularity,
        "period": period.start.isoformat(),
        "scope": scope.key,
        "part": part,
    }
    return f"{reverse('insights-indicator-leads')}?{urlencode(query)}"


def value_build(series: Series, period: Period) -> IndicatorValue:
    """One unsaved IndicatorValue: the period's inputs, status, entry into warning and explanation."""
    series.prefetch([period])
    inputs = series.inputs(period)
    verdict = series.verdict(period)
    previous = series.verdict(period.shifted(-1))
    entered = series.entered_warning(period)
    th = series.thresholds
    instant = period.instant(series.now)
    response = SUGGESTED_RESPONSES[Indicator(series.indicator)]
    explanation = explanations.build(
        "indicator_value",
        indicator=series.indicator,
        granularity=period.granularity,
        period_start=period.start.isoformat(),
        evaluated_at=instant.isoformat(),
        scope={"kind": series.scope.kind, "id": series.scope.id, "label": series.scope.label},
        formula=FORMULAS[Indicator(series.indicator)],
        numerator=inputs.numerator,
        denominator=inputs.denominator,
        value=None if inputs.value is None else round(inputs.value, 6),
        inputs=inputs.details,
        thresholds=th.as_dict(),
        status=verdict.status,
        rule=verdict.rule,
        checks=verdict.checks,
        previous_status=previous.status,
        entered_warning=entered,
        suggested_response=response,
    )
    return IndicatorValue(
        indicator=series.indicator,
        granularity=period.granularity,
        period_start=period.start,
        scope_kind=series.scope.kind,
        scope_id=series.scope.id,
        thresholds_version=th.version,
        value=inputs.value,
        numerator=inputs.numerator,
        denominator=inputs.denominator,
        status=verdict.status,
        entered_warning=entered,
        explanation=explanation,
        drill_link=drill_link(indicator=series.indicator, period=period, scope=series.scope),
        suggested_response=response,
        evaluated_at=clock.now(),
    )


def scopes_all() -> list[Scope]:
    """The organisation, every region, every team and every active rep (C9: region, team, rep)."""
    scopes = [Scope(ScopeKind.ORG, 0, "")]
    scopes += [Scope(ScopeKind.REGION, r.pk, r.name) for r in Region.objects.order_by("code")]
    scopes += [Scope(ScopeKind.TEAM, t.pk, t.name) for t in Team.objects.order_by("name")]
    scopes += [
        Scope(ScopeKind.REP, u.pk, str(u))
        for u in User.objects.filter(role=Role.REP, is_active=True).order_by("pk")
    ]
    return scopes


@transaction.atomic
def indicators_evaluate(
    *,
    day: dt.date | None = None,
    granularity: str = "day",
    scopes: list[Scope] | None = None,
    now: dt.datetime | None = None,
) -> list[IndicatorValue]:
    """C9: every indicator for the period (day, or the week containing `day`; yesterday by default)
    and every scope, stored (upserted on indicator/granularity/period/scope/thresholds version).
    Returns the stored rows; those with `entered_warning` are the alerts to send."""
    now = now or clock.now()
    day = day or (now.astimezone(clock.org_tz()).date() - dt.timedelta(days=1))
    period = period_of(day, granularity)
    thresholds: Thresholds = thresholds_in_force(period.instant(now))
    built = [
        value_build(Series(indicator, scope, thresholds, now), period)
        for scope in (scopes if scopes is not None else scopes_all())
        for indicator in Indicator.values
    ]
    IndicatorValue.objects.bulk_create(
        built, update_conflicts=True, unique_fields=KEY_FIELDS, update_fields=VALUE_FIELDS
    )
    return list(
        IndicatorValue.objects.filter(
            granularity=granularity, period_start=period.start, thresholds_version=thresholds.version
        ).order_by("indicator", "scope_kind", "scope_id")
    )


def indicator_warnings_entered(*, evaluated: list[IndicatorValue]) -> list[IndicatorValue]:
    """Hand-off to alerts: the values that entered warning in this evaluation (one per entry; a
    value that stays in warning is not one again)."""
    return [value for value in evaluated if value.entered_warning]


def evaluation_summary(values: list[IndicatorValue]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value.status] = counts.get(value.status, 0) + 1
    return {"values": len(values), "entered_warning": sum(v.entered_warning for v in values), **counts}
