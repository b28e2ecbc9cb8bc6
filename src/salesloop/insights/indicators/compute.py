"""The three indicators of C9 computed live from the derived fact tables, and the source's warning
rules. Each `*_inputs` is one indexed query for one scope and one period; `Series` memoises them so
a series with its previous periods (two weeks in a row, a sharp drop, entering warning) costs each
period once.

Formulas (the source's, SPEC C9; cohorts in docs/indicators.md):
- conversion = leads that arrived in the trailing window (28 days) ending at T and reached 需求确认
  or a later stage before T ÷ those leads;
- stall index = Σ over stages (mean days the open leads at T have dwelt in it × their number) ÷ the
  open leads at T;
- response rate = outbound touches of the period that the customer responded to ÷ outbound touches.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from salesloop.accounts.models import User
from salesloop.insights.indicators.facts import RANK_QUOTE, RANK_SOLUTION_DEMO
from salesloop.insights.indicators.ledgers import local_day
from salesloop.insights.indicators.periods import Period, local_midnight
from salesloop.insights.indicators.thresholds import Thresholds
from salesloop.insights.models.indicators import (
    Indicator,
    IndicatorArrivalDay,
    IndicatorLead,
    IndicatorSpan,
    IndicatorStallDay,
    IndicatorStatus,
    IndicatorTouch,
    IndicatorTouchDay,
    ScopeKind,
)

DAY_SECONDS = 86_400


@dataclass(frozen=True)
class Scope:
    kind: str
    id: int = 0
    label: str = ""

    @property
    def key(self) -> str:
        return "org" if self.kind == ScopeKind.ORG else f"{self.kind}:{self.id}"


def scoped(records: QuerySet[Any], scope: Scope) -> QuerySet[Any]:
    """Per-lead rows of a scope. Region by the lead's region; team and rep by the lead's current
    owner (kept on the rows) — a reassigned lead's history goes with it to its new owner."""
    if scope.kind == ScopeKind.REGION:
        return records.filter(region_id=scope.id)
    if scope.kind == ScopeKind.TEAM:
        return records.filter(owner_id__in=User.objects.filter(team_id=scope.id).values("id"))
    if scope.kind == ScopeKind.REP:
        return records.filter(owner_id=scope.id)
    return records


_FROM_ROWS = False


@contextlib.contextmanager
def from_lead_rows() -> Iterator[None]:
    """Compute from the per-lead rows instead of the day ledgers: the same numbers by another road
    (tests and the benchmark check that they agree)."""
    global _FROM_ROWS
    previous, _FROM_ROWS = _FROM_ROWS, True
    try:
        yield
    finally:
        _FROM_ROWS = previous


def uses_ledgers(scope: Scope) -> bool:
    """Every scope sums the day ledgers, unless `from_lead_rows()` asks for the per-lead rows."""
    return not _FROM_ROWS


def ledger(model: type[Any], scope: Scope) -> QuerySet[Any]:
    """Day-ledger rows of a scope: by region, by owner, or by the owners in a team."""
    return scoped(model.objects.all(), scope)


def last_day(instant: dt.datetime) -> dt.date:
    """The last local day whose facts count at `instant`: the day before a midnight, else today."""
    return local_day(instant - dt.timedelta(microseconds=1))


@dataclass
class Inputs:
    """What a value is made of; `value` is None when nothing was counted."""

    numerator: float
    denominator: int
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


def conversion_window(
    period: Period, thresholds: Thresholds, now: dt.datetime | None = None
) -> tuple[dt.datetime, dt.datetime]:
    """Arrivals of the `conversion_window_days` local days ending with the period's last day (so
    far), before the instant."""
    instant = period.instant(now)
    first_day = last_day(instant) - dt.timedelta(days=thresholds.conversion_window_days - 1)
    return local_midnight(first_day), instant


def conversion_inputs(
    scope: Scope, period: Period, thresholds: Thresholds, now: dt.datetime | None = None
) -> Inputs:
    if uses_ledgers(scope):
        return conversion_many(scope, [period], thresholds, now)[period]
    since, instant = conversion_window(period, thresholds, now)
    totals = (
        scoped(IndicatorLead.objects.all(), scope)
        .filter(arrived_at__gte=since, arrived_at__lt=instant)
        .aggregate(n_leads=Count("pk"), n_reached=Count("pk", filter=Q(needs_confirmed_at__lt=instant)))
    )
    return _conversion_from(totals, since, instant)


def _conversion_from(totals: dict[str, int], since: dt.datetime, instant: dt.datetime) -> Inputs:
    return Inputs(
        numerator=totals["n_reached"],
        denominator=totals["n_leads"],
        details={"arrived_from": since.isoformat(), "arrived_before": instant.isoformat()},
    )


# --- many periods from one ledger query each (a series, a period with the periods before it) ------


def conversion_many(
    scope: Scope, periods: list[Period], thresholds: Thresholds, now: dt.datetime | None = None
) -> dict[Period, Inputs]:
    windows = {p: conversion_window(p, thresholds, now) for p in periods}
    days = {p: (local_day(since), last_day(instant)) for p, (since, instant) in windows.items()}
    rows = list(
        ledger(IndicatorArrivalDay, scope)
        .filter(
            arrival_day__gte=min(first for first, _ in days.values()),
            arrival_day__lte=max(last for _, last in days.values()),
        )
        .values("arrival_day", "needs_day")
        .annotate(n=Sum("leads"))
        .order_by()
    )
    out = {}
    for period, (first, last) in days.items():
        leads = reached = 0
        for row in rows:
            if first <= row["arrival_day"] <= last:
                leads += row["n"]
                if row["needs_day"] <= last:
                    reached += row["n"]
        out[period] = _conversion_from({"n_leads": leads, "n_reached": reached}, *windows[period])
    return out


def stall_many(
    scope: Scope, periods: list[Period], thresholds: Thresholds, now: dt.datetime | None = None
) -> dict[Period, Inputs]:
    instants = {p: p.instant(now) for p in periods}
    lasts = {p: last_day(instant) for p, instant in instants.items()}
    rows = list(
        ledger(IndicatorStallDay, scope)
        .filter(day__lte=max(lasts.values()))
        .values("day", "rank")
        .annotate(n=Sum("leads"), e=Sum("entered_s"))
        .order_by()
    )
    out = {}
    for period, last in lasts.items():
        by_rank: dict[int, list[int]] = {}
        for row in rows:
            if row["day"] <= last:
                sums = by_rank.setdefault(row["rank"], [0, 0])
                sums[0] += row["n"]
                sums[1] += row["e"]
        ranked = [{"rank": k, "n_leads": v[0], "entered_sum": v[1]} for k, v in sorted(by_rank.items())]
        out[period] = _stall_from(ranked, instants[period])
    return out


def response_many(
    scope: Scope, periods: list[Period], thresholds: Thresholds, now: dt.datetime | None = None
) -> dict[Period, Inputs]:
    instants = {p: p.instant(now) for p in periods}
    spans = {p: (p.start, last_day(instant)) for p, instant in instants.items()}
    rows = list(
        ledger(IndicatorTouchDay, scope)
        .filter(
            day__gte=min(first for first, _ in spans.values()),
            day__lte=max(last for _, last in spans.values()),
        )
        .values("day", "rank")
        .annotate(t=Sum("touches"), r=Sum("responded"))
        .order_by()
    )
    out = {}
    for period, (first, last) in spans.items():
        totals = {"n_touches": 0, "n_responded": 0, "n_quote": 0, "n_quote_responded": 0}
        for row in rows:
            if first <= row["day"] <= last:
                totals["n_touches"] += row["t"]
                totals["n_responded"] += row["r"]
                if row["rank"] == RANK_QUOTE:
                    totals["n_quote"] += row["t"]
                    totals["n_quote_responded"] += row["r"]
        out[period] = _response_from(totals, period, instants[period])
    return out


def stall_inputs(
    scope: Scope, period: Period, thresholds: Thresholds, now: dt.datetime | None = None
) -> Inputs:
    """Open at T: entered its stage before T and not left before T (a stay that ends at T counts)."""
    if uses_ledgers(scope):
        return stall_many(scope, [period], thresholds, now)[period]
    instant = period.instant(now)
    rows = (
        scoped(IndicatorSpan.objects.all(), scope)
        .filter(left_at__gte=instant, entered_at__lt=instant)
        .values("rank")
        .annotate(n_leads=Count("pk"), entered_sum=Sum("entered_s"))
        .order_by("rank")
    )
    return _stall_from(rows, instant)


def _stall_from(rows: Any, instant: dt.datetime) -> Inputs:
    """The stall inputs from (rank, open leads, sum of their entry times) at `instant`."""
    instant_s = int(instant.timestamp())
    stages = []
    total_leads, total_days = 0, 0.0
    for row in rows:
        leads = int(row["n_leads"] or 0)
        if not leads:
            continue
        dwell_days = (leads * instant_s - int(row["entered_sum"])) / DAY_SECONDS
        total_leads += leads
        total_days += dwell_days
        stages.append({"rank": row["rank"], "leads": leads, "mean_dwell_days": round(dwell_days / leads, 4)})
    demo = next((s["leads"] for s in stages if s["rank"] == RANK_SOLUTION_DEMO), 0)
    return Inputs(
        numerator=round(total_days, 4),
        denominator=total_leads,
        details={
            "at": instant.isoformat(),
            "stages": stages,
            "demo_leads": demo,
            "demo_share": round(demo / total_leads, 4) if total_leads else None,
        },
    )


def response_inputs(
    scope: Scope, period: Period, thresholds: Thresholds, now: dt.datetime | None = None
) -> Inputs:
    if uses_ledgers(scope):
        return response_many(scope, [period], thresholds, now)[period]
    instant = period.instant(now)
    totals = (
        scoped(IndicatorTouch.objects.all(), scope)
        .filter(at__gte=period.starts_at, at__lt=instant)
        .aggregate(
            n_touches=Count("pk"),
            n_responded=Count("pk", filter=Q(responded=True)),
            n_quote=Count("pk", filter=Q(rank=RANK_QUOTE)),
            n_quote_responded=Count("pk", filter=Q(rank=RANK_QUOTE, responded=True)),
        )
    )
    return _response_from(totals, period, instant)


def _response_from(totals: dict[str, int], period: Period, instant: dt.datetime) -> Inputs:
    quote = totals["n_quote"]
    return Inputs(
        numerator=totals["n_responded"],
        denominator=totals["n_touches"],
        details={
            "from": period.starts_at.isoformat(),
            "before": instant.isoformat(),
            "quote_touches": quote,
            "quote_responded": totals["n_quote_responded"],
            "quote_rate": round(totals["n_quote_responded"] / quote, 4) if quote else None,
        },
    )


MANY = {
    Indicator.CONVERSION: conversion_many,
    Indicator.STALL: stall_many,
    Indicator.RESPONSE: response_many,
}

INPUTS = {
    Indicator.CONVERSION: conversion_inputs,
    Indicator.STALL: stall_inputs,
    Indicator.RESPONSE: response_inputs,
}


@dataclass
class Verdict:
    status: str
    rule: str  # code of the rule that decided (responses.RULE_LABELS says it in words)
    checks: list[dict[str, Any]]


class Series:
    """Values of one indicator for one scope, computed on demand and memoised per period, with the
    status rules that need the period before (or the week before)."""

    def __init__(
        self, indicator: str, scope: Scope, thresholds: Thresholds, now: dt.datetime | None = None
    ) -> None:
        self.indicator = indicator
        self.scope = scope
        self.thresholds = thresholds
        self.now = now
        self._inputs: dict[Period, Inputs] = {}

    def prefetch(self, periods: list[Period]) -> None:
        """Compute, with one ledger query, the periods' inputs and those their statuses need: the
        period before (entering warning), the week before (conversion), the one before that."""
        if not uses_ledgers(self.scope) or not periods:
            return
        needed: set[Period] = set()
        for period in periods:
            for p in (period, period.shifted(-1)):
                needed.add(p)
                if self.indicator == Indicator.CONVERSION:
                    needed.add(p.minus_days(7))
                if self.indicator == Indicator.RESPONSE:
                    needed.add(p.shifted(-1))
        missing = [p for p in needed if p not in self._inputs]
        if missing:
            self._inputs.update(MANY[self.indicator](self.scope, missing, self.thresholds, self.now))

    def inputs(self, period: Period) -> Inputs:
        if period not in self._inputs:
            self._inputs[period] = INPUTS[self.indicator](self.scope, period, self.thresholds, self.now)
        return self._inputs[period]

    def verdict(self, period: Period) -> Verdict:
        inputs = self.inputs(period)
        value = inputs.value
        th = self.thresholds
        if value is None:
            return Verdict(IndicatorStatus.NO_DATA, "no_data", [])
        if self.indicator == Indicator.CONVERSION:
            return self._conversion(period, value)
        if self.indicator == Indicator.STALL:
            share = inputs.details["demo_share"] or 0.0
            checks = [
                {
                    "name": "stall_days",
                    "value": round(value, 4),
                    "op": "<=",
                    "threshold": th.stall_healthy_days,
                },
                {
                    "name": "stall_days",
                    "value": round(value, 4),
                    "op": ">",
                    "threshold": th.stall_warning_days,
                },
                {"name": "demo_share", "value": share, "op": ">", "threshold": th.stall_demo_share},
            ]
            if value <= th.stall_healthy_days:
                return Verdict(IndicatorStatus.HEALTHY, "stall_healthy", checks)
            if value > th.stall_warning_days and share > th.stall_demo_share:
                return Verdict(IndicatorStatus.WARNING, "stall_warning", checks)
            return Verdict(IndicatorStatus.WATCH, "stall_watch", checks)
        return self._response(period, value)

    def _conversion(self, period: Period, value: float) -> Verdict:
        th = self.thresholds
        # "two weeks in a row": the value one week earlier, whatever the granularity
        week_before = self.inputs(period.minus_days(7)).value
        checks = [
            {"name": "conversion", "value": round(value, 4), "op": ">=", "threshold": th.conversion_healthy},
            {"name": "conversion", "value": round(value, 4), "op": "<", "threshold": th.conversion_warning},
            {
                "name": "conversion_week_before",
                "value": None if week_before is None else round(week_before, 4),
                "op": "<",
                "threshold": th.conversion_warning,
            },
        ]
        if value >= th.conversion_healthy:
            return Verdict(IndicatorStatus.HEALTHY, "conversion_healthy", checks)
        if value < th.conversion_warning and week_before is not None and week_before < th.conversion_warning:
            return Verdict(IndicatorStatus.WARNING, "conversion_warning", checks)
        return Verdict(IndicatorStatus.WATCH, "conversion_watch", checks)

    def sharp_drop(self, period: Period) -> dict[str, Any]:
        """报价谈判's response rate fell sharply from the period before: by at least
        `response_drop_points` (absolute) or `response_drop_relative` (of the earlier rate), both
        periods with at least `response_drop_min_touches` touches at 报价谈判."""
        th = self.thresholds
        now = self.inputs(period).details
        before = self.inputs(period.shifted(-1)).details
        enough = (
            now["quote_touches"] >= th.response_drop_min_touches
            and before["quote_touches"] >= th.response_drop_min_touches
        )
        drop = None
        sharp = False
        if enough and now["quote_rate"] is not None and before["quote_rate"] is not None:
            drop = round(before["quote_rate"] - now["quote_rate"], 4)
            relative = drop / before["quote_rate"] if before["quote_rate"] else 0.0
            # compare with a little tolerance: 0.15 computed from counts may be 0.1499999…
            sharp = drop > 0 and (
                drop >= th.response_drop_points - 1e-9 or relative >= th.response_drop_relative - 1e-9
            )
        return {
            "quote_rate": now["quote_rate"],
            "quote_touches": now["quote_touches"],
            "quote_rate_before": before["quote_rate"],
            "quote_touches_before": before["quote_touches"],
            "enough_touches": enough,
            "drop_points": drop,
            "sharp": sharp,
        }

    def _response(self, period: Period, value: float) -> Verdict:
        th = self.thresholds
        drop = self.sharp_drop(period)
        checks = [
            {"name": "response", "value": round(value, 4), "op": ">=", "threshold": th.response_healthy},
            {"name": "response", "value": round(value, 4), "op": "<", "threshold": th.response_warning},
            {"name": "quote_sharp_drop", "value": drop, "op": "is", "threshold": True},
        ]
        if value >= th.response_healthy:
            return Verdict(IndicatorStatus.HEALTHY, "response_healthy", checks)
        if value < th.response_warning and drop["sharp"]:
            return Verdict(IndicatorStatus.WARNING, "response_warning", checks)
        return Verdict(IndicatorStatus.WATCH, "response_watch", checks)

    def entered_warning(self, period: Period) -> bool:
        """In warning now and not in the period before: one alert per entry into warning."""
        if self.verdict(period).status != IndicatorStatus.WARNING:
            return False
        return self.verdict(period.shifted(-1)).status != IndicatorStatus.WARNING
