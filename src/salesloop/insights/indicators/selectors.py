"""Reads of the leading indicators, scoped by role (DESIGN.md rule 4): which scopes a user may look
at, a live series with inputs and statuses, and the leads behind a value (keyset-paginated)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from salesloop.accounts.models import Region, Team, User
from salesloop.core import clock
from salesloop.core.roles import Role, sees_all
from salesloop.crm.selectors import FilterError, Page, cursor_decode, cursor_encode, leads_visible_to
from salesloop.insights.indicators.compute import Scope, Series, conversion_window
from salesloop.insights.indicators.periods import Period, period_of, periods_between
from salesloop.insights.indicators.responses import RESPONSE_LABELS, RULE_LABELS, SUGGESTED_RESPONSES
from salesloop.insights.indicators.services import drill_link
from salesloop.insights.indicators.thresholds import thresholds_in_force
from salesloop.insights.models.indicators import (
    Granularity,
    Indicator,
    IndicatorLead,
    IndicatorSpan,
    IndicatorTouch,
    ScopeKind,
)

MAX_PERIODS = 60
# Days far outside any sales history would overflow datetime arithmetic at the period's edges.
EARLIEST_DAY, LATEST_DAY = dt.date(1971, 1, 1), dt.date(9990, 12, 31)


def day_checked(field: str, day: dt.date | None) -> dt.date | None:
    if day is not None and not EARLIEST_DAY <= day <= LATEST_DAY:
        raise FilterError(field, f"a date between {EARLIEST_DAY} and {LATEST_DAY}")
    return day


def scope_default(user: Any) -> str:
    if sees_all(user):
        return "org"
    if user.role == Role.MANAGER and user.region_id:
        return f"region:{user.region.code}"
    return f"rep:{user.pk}"


def scope_parse(*, user: Any, text: str | None) -> Scope:
    """`org`, `region:<code or id>`, `team:<id>`, `rep:<id or username>` → a Scope the user may see.
    Malformed → FilterError on `scope` (422); unknown or out of the user's scope → 404."""
    text = (text or scope_default(user)).strip()
    kind, _, ref = text.partition(":")
    if kind == ScopeKind.ORG and not ref:
        scope = Scope(ScopeKind.ORG, 0, "")
    elif kind in (ScopeKind.REGION, ScopeKind.TEAM, ScopeKind.REP) and ref:
        scope = _scope_lookup(kind, ref)
    else:
        raise FilterError("scope", "org, region:<code>, team:<id> or rep:<id>")
    if not scope_visible(user, scope):
        raise Http404("no such scope")
    return scope


def _scope_lookup(kind: str, ref: str) -> Scope:
    if kind == ScopeKind.REGION:
        region = Region.objects.filter(code=ref).first() or (
            Region.objects.filter(pk=int(ref)).first() if ref.isdigit() else None
        )
        if region is None:
            raise Http404("no such region")
        return Scope(kind, region.pk, region.name)
    if not ref.isdigit() and kind == ScopeKind.TEAM:
        raise FilterError("scope", "team:<id>")
    if kind == ScopeKind.TEAM:
        team = Team.objects.filter(pk=int(ref)).first() if int(ref) < 2**31 else None
        if team is None:
            raise Http404("no such team")
        return Scope(kind, team.pk, team.name)
    rep = (
        User.objects.filter(pk=int(ref)).first() if ref.isdigit() and int(ref) < 2**31 else None
    ) or User.objects.filter(username=ref).first()
    if rep is None:
        raise Http404("no such rep")
    return Scope(kind, rep.pk, str(rep))


def scope_visible(user: Any, scope: Scope) -> bool:
    """director, product manager, admin: all; manager: own region, its teams and its reps; rep: own."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if sees_all(user):
        return True
    if user.role == Role.MANAGER and user.region_id:
        if scope.kind == ScopeKind.REGION:
            return scope.id == user.region_id
        if scope.kind == ScopeKind.TEAM:
            return Team.objects.filter(pk=scope.id, region_id=user.region_id).exists()
        if scope.kind == ScopeKind.REP:
            return User.objects.filter(pk=scope.id, region_id=user.region_id).exists()
        return False
    return scope.kind == ScopeKind.REP and scope.id == user.pk


def scopes_visible(user: Any) -> list[tuple[str, str]]:
    """(key, label) of the scopes the user may pick on the page."""
    options: list[tuple[str, str]] = []
    if sees_all(user):
        options.append(("org", ""))
        regions = Region.objects.order_by("code")
        teams = Team.objects.order_by("name")
        reps = User.objects.filter(role=Role.REP, is_active=True)
    elif user.role == Role.MANAGER and user.region_id:
        regions = Region.objects.filter(pk=user.region_id)
        teams = Team.objects.filter(region_id=user.region_id).order_by("name")
        reps = User.objects.filter(role=Role.REP, is_active=True, region_id=user.region_id)
    else:
        return [(f"rep:{user.pk}", str(user))]
    options += [(f"region:{r.code}", r.name) for r in regions]
    options += [(f"team:{t.pk}", t.name) for t in teams]
    options += [(f"rep:{u.pk}", str(u)) for u in reps.order_by("username")]
    return options


@dataclass
class PointView:
    indicator: str
    period: Period
    value: float | None
    numerator: float
    denominator: int
    status: str
    rule: str
    entered_warning: bool
    inputs: dict[str, Any]
    thresholds_version: int
    drill_link: str
    numerator_link: str

    def as_json(self) -> dict[str, Any]:
        return {
            "indicator": self.indicator,
            "granularity": self.period.granularity,
            "period_start": self.period.start,
            "period_end": self.period.end,
            "value": self.value,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "status": self.status,
            "rule": self.rule,
            "rule_text": str(RULE_LABELS.get(self.rule, "")),
            "entered_warning": self.entered_warning,
            "inputs": self.inputs,
            "thresholds_version": self.thresholds_version,
            "leads_link": self.drill_link,
            "numerator_leads_link": self.numerator_link,
            "suggested_response": SUGGESTED_RESPONSES[Indicator(self.indicator)],
            "suggested_response_text": str(RESPONSE_LABELS[SUGGESTED_RESPONSES[Indicator(self.indicator)]]),
        }


def indicator_series(
    *,
    scope: Scope,
    granularity: str,
    first: dt.date | None = None,
    last: dt.date | None = None,
    indicators: list[str] | None = None,
    now: dt.datetime | None = None,
) -> dict[str, list[PointView]]:
    """Each indicator's values for the periods covering [first, last] (default: the last 8
    periods up to today), computed live from the facts under the thresholds in force now."""
    if granularity not in Granularity.values:
        raise FilterError("granularity", "day or week")
    first, last = day_checked("from", first), day_checked("to", last)
    now = now or clock.now()
    today = now.astimezone(clock.org_tz()).date()
    last = last or today
    if first is None:
        first = period_of(last, granularity).shifted(-7).start
    if first > last:
        raise FilterError("from", "from must not be after to")
    periods = periods_between(first, last, granularity, limit=MAX_PERIODS)
    thresholds = thresholds_in_force(now)
    out: dict[str, list[PointView]] = {}
    for indicator in indicators or Indicator.values:
        series = Series(indicator, scope, thresholds, now)
        series.prefetch(periods)  # one ledger query for every period and the ones before them
        points = []
        for period in periods:
            inputs = series.inputs(period)
            verdict = series.verdict(period)
            points.append(
                PointView(
                    indicator=indicator,
                    period=period,
                    value=inputs.value,
                    numerator=inputs.numerator,
                    denominator=inputs.denominator,
                    status=verdict.status,
                    rule=verdict.rule,
                    entered_warning=series.entered_warning(period),
                    inputs=inputs.details,
                    thresholds_version=thresholds.version,
                    drill_link=drill_link(indicator=indicator, period=period, scope=scope),
                    numerator_link=drill_link(
                        indicator=indicator, period=period, scope=scope, part="numerator"
                    ),
                )
            )
        out[indicator] = points
    return out


@dataclass
class CountedRow:
    """One counted record behind a value: the lead, and what about it was counted."""

    id: int  # the cursor key: lead id (conversion, stall) or touch id (response)
    lead_id: int
    lead_title: str
    rank: int | None
    moment: dt.datetime | None
    in_numerator: bool
    dwell_days: float | None = None


def counted_records(
    *,
    user: Any,
    scope: Scope,
    indicator: str,
    period: Period,
    part: str,
    cursor: str | None,
    limit: int = 50,
    now: dt.datetime | None = None,
) -> Page:
    """Exactly the leads (touches for the response rate) a value counted, newest first by id, one
    page after the cursor; `part=numerator` keeps those in the numerator. Out of the user's lead
    scope they are not listed (the scope check already makes that empty for any allowed scope)."""
    if indicator not in Indicator.values:
        raise FilterError("indicator", "conversion, stall or response")
    if part not in ("numerator", "denominator"):
        raise FilterError("part", "numerator or denominator")
    from salesloop.insights.indicators.compute import scoped

    now = now or clock.now()
    instant = period.instant(now)
    thresholds = thresholds_in_force(now)
    # the scope check has already limited what the scope holds; this makes it hold by construction
    visible = leads_visible_to(user).values("id")
    records: QuerySet[Any]
    if indicator == Indicator.CONVERSION:
        since, _ = conversion_window(period, thresholds, now)
        records = scoped(IndicatorLead.objects.all(), scope).filter(
            arrived_at__gte=since, arrived_at__lt=instant
        )
        if part == "numerator":
            records = records.filter(needs_confirmed_at__lt=instant)
        key = "lead_id"
        fields = ["lead_id", "lead__title", "arrived_at", "needs_confirmed_at"]
    elif indicator == Indicator.STALL:
        records = scoped(IndicatorSpan.objects.all(), scope).filter(
            left_at__gte=instant, entered_at__lt=instant
        )
        key = "lead_id"
        fields = ["lead_id", "lead__title", "rank", "entered_at"]
    else:
        records = scoped(IndicatorTouch.objects.all(), scope).filter(at__gte=period.starts_at, at__lt=instant)
        if part == "numerator":
            records = records.filter(responded=True)
        key = "touch_id"
        fields = ["touch_id", "lead_id", "lead__title", "rank", "at", "responded"]
    if not sees_all(user):
        records = records.filter(lead_id__in=visible)
    if cursor:
        records = records.filter(**{f"{key}__lt": cursor_decode(cursor)})
    rows = list(records.order_by(f"-{key}").values(*fields)[: limit + 1])
    items = []
    for row in rows[:limit]:
        if indicator == Indicator.CONVERSION:
            reached = row["needs_confirmed_at"]
            items.append(
                CountedRow(
                    id=row["lead_id"],
                    lead_id=row["lead_id"],
                    lead_title=row["lead__title"],
                    rank=None,
                    moment=row["arrived_at"],
                    in_numerator=reached is not None and reached < instant,
                )
            )
        elif indicator == Indicator.STALL:
            items.append(
                CountedRow(
                    id=row["lead_id"],
                    lead_id=row["lead_id"],
                    lead_title=row["lead__title"],
                    rank=row["rank"],
                    moment=row["entered_at"],
                    in_numerator=True,
                    dwell_days=round((instant - row["entered_at"]).total_seconds() / 86_400, 2),
                )
            )
        else:
            items.append(
                CountedRow(
                    id=row["touch_id"],
                    lead_id=row["lead_id"],
                    lead_title=row["lead__title"],
                    rank=row["rank"],
                    moment=row["at"],
                    in_numerator=bool(row["responded"]),
                )
            )
    next_cursor = cursor_encode(items[-1].id) if len(rows) > limit else None
    return Page(items=items, next_cursor=next_cursor)


def period_parse(*, granularity: str, text: str | None) -> Period:
    if granularity not in Granularity.values:
        raise FilterError("granularity", "day or week")
    try:
        day = dt.date.fromisoformat(text or "")
    except ValueError as exc:
        raise FilterError("period", "a date, YYYY-MM-DD") from exc
    day_checked("period", day)
    return period_of(day, granularity)
