"""The funnel heat map (SPEC C5.1): per stage, for a scope, source and period — leads piled up
now, leads that passed through, conversion to a later stage, mean and median dwell, backward-move
rate — and the cross view of stages × regions or × reps. Read-only; definitions in
docs/insights.md.

Organisation and region scopes read the rollups (`insights.models.funnel`): a fixed number of small
grouped queries whatever the number of leads. Team and rep scopes replay the moves of the team's or
rep's own leads (`funnel_rollup.rollup_of_leads`), because ownership changes without a move and
the rollups are not keyed by owner; a rep's book is thousands of leads, not millions.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404

from salesloop.accounts.models import Region, Team, User
from salesloop.core import clock
from salesloop.core.roles import Role, sees_all
from salesloop.crm.models import Channel, Lead
from salesloop.crm.selectors import FilterError
from salesloop.insights.funnel_rollup import (
    BACKWARD,
    CONVERTED,
    DAY_COUNTERS,
    DAY_SECONDS,
    DWELL,
    ENTRIES,
    EXITS,
    HISTOGRAM,
    Rollup,
    bucket_bounds,
    lead_facts,
    rollup_of_leads,
)
from salesloop.insights.models import FunnelDay, FunnelOpen

SCOPES = ("org", "region", "team", "rep")
CROSSES = ("region", "rep")
SCOPES_PARAMS = ("scope", "region", "team", "rep", "source", "start", "end", "cross")
DEFAULT_PERIOD_DAYS = 90
MAX_PERIOD_DAYS = 731
MIN_YEAR, MAX_YEAR = 2000, 2100  # beyond, date arithmetic (the period before) would overflow
STALE_DAYS = 14  # the cross view by rep shades open leads older than this in their stage


@dataclass(frozen=True)
class FunnelQuery:
    """What the heat map is asked for, already checked against the user's role."""

    scope: str
    region_id: int | None
    team_id: int | None
    rep_id: int | None
    source: str | None
    start: dt.date
    end: dt.date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def as_params(self) -> dict[str, str]:
        params = {"scope": self.scope, "start": self.start.isoformat(), "end": self.end.isoformat()}
        for name, value in (("region", self.region_id), ("team", self.team_id), ("rep", self.rep_id)):
            if value is not None:
                params[name] = str(value)
        if self.source:
            params["source"] = self.source
        return params

    def window(self) -> tuple[dt.datetime, dt.datetime]:
        """The period as UTC-comparable aware datetimes [start 00:00, end+1 00:00) in the org's zone."""
        tz = clock.org_tz()
        return (
            dt.datetime.combine(self.start, dt.time.min, tzinfo=tz),
            dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time.min, tzinfo=tz),
        )


def _int_param(params: Mapping[str, Any], name: str) -> int | None:
    raw = str(params.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise FilterError(name, f"{name} must be a record id (a positive whole number)")
    return int(raw)


def _date_param(params: Mapping[str, Any], name: str, default: dt.date) -> dt.date:
    raw = str(params.get(name) or "").strip()
    if not raw:
        return default
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise FilterError(name, f"{name} must be a date written YYYY-MM-DD") from exc
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise FilterError(name, f"{name} must be between {MIN_YEAR} and {MAX_YEAR}")
    return day


def funnel_query_parse(*, user: Any, params: Mapping[str, Any]) -> FunnelQuery:
    """Parse and authorise the filters (DESIGN.md rule 4). A bad value raises FilterError naming
    the field (422 / the form re-rendered); a region, team or rep outside the user's scope — or
    that does not exist — raises Http404, as a lead out of scope does.

    Defaults by role: a rep sees their own funnel, a manager their region, everyone else the whole
    organisation; the period is the last 90 days in the organisation's time zone."""
    region_id, team_id, rep_id = (_int_param(params, n) for n in ("region", "team", "rep"))
    scope = str(params.get("scope") or "").strip()
    if scope and scope not in SCOPES:
        raise FilterError("scope", f"scope must be one of {', '.join(SCOPES)}")
    if not scope:
        scope = "rep" if rep_id else "team" if team_id else "region" if region_id else ""
    source = str(params.get("source") or "").strip() or None
    if source is not None and source not in Channel.values:
        raise FilterError("source", f"source must be one of {', '.join(Channel.values)}")
    today = clock.today_local()
    end = _date_param(params, "end", today)
    start = _date_param(params, "start", end - dt.timedelta(days=DEFAULT_PERIOD_DAYS - 1))
    if start > end:
        raise FilterError("start", "start must be on or before end")
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise FilterError("start", f"the period is at most {MAX_PERIOD_DAYS} days")

    if not getattr(user, "is_authenticated", False) or not user.is_active:
        raise Http404("no funnel")
    if sees_all(user):
        scope = scope or "org"
    elif user.role == Role.MANAGER and user.region_id:
        scope = scope or "region"
        if scope == "org":
            raise Http404("a manager sees their own region's funnel")
        region_id = region_id or (user.region_id if scope == "region" else None)
    elif user.role == Role.REP:
        scope = scope or "rep"
        rep_id = rep_id or user.pk
        if scope != "rep" or rep_id != user.pk:
            raise Http404("a rep sees their own funnel")
    else:
        raise Http404("no funnel")

    # The scope's record must exist and, for a manager, lie in their region.
    own_region = None if sees_all(user) else user.region_id
    if scope == "region":
        if region_id is None:
            raise FilterError("region", "choose a region")
        if not Region.objects.filter(pk=region_id).exists() or own_region not in (None, region_id):
            raise Http404("region not found")
        team_id = rep_id = None
    elif scope == "team":
        if team_id is None:
            raise FilterError("team", "choose a team")
        team = Team.objects.filter(pk=team_id).values_list("region_id", flat=True).first()
        if team is None and not Team.objects.filter(pk=team_id).exists():
            raise Http404("team not found")
        if own_region is not None and team != own_region:
            raise Http404("team not found")
        region_id = rep_id = None
    elif scope == "rep":
        if rep_id is None:
            raise FilterError("rep", "choose a rep")
        rep = User.objects.filter(pk=rep_id).values_list("region_id", flat=True).first()
        if rep is None and not User.objects.filter(pk=rep_id).exists():
            raise Http404("rep not found")
        if own_region is not None and user.role == Role.MANAGER and rep != own_region:
            raise Http404("rep not found")
        region_id = team_id = None
    else:
        region_id = team_id = rep_id = None
    return FunnelQuery(scope, region_id, team_id, rep_id, source, start, end)


# ---- the numbers ------------------------------------------------------------------------------------


@dataclass
class StageNumbers:
    """Sums for one stage (or one stage of one region) over the period, plus the pile-up now."""

    counters: list[int] = field(default_factory=lambda: [0] * len(DAY_COUNTERS))
    open_leads: int = 0
    entered_epoch_sum: int = 0


def _stage_numbers() -> defaultdict[Any, StageNumbers]:
    return defaultdict(StageNumbers)


def scope_leads(query: FunnelQuery) -> QuerySet[Lead]:
    """The leads of a team or rep scope (current owner), with the source filter."""
    leads = Lead.objects.all()
    if query.scope == "rep":
        leads = leads.filter(owner_id=query.rep_id)
    elif query.scope == "team":
        leads = leads.filter(owner__team_id=query.team_id)
    elif query.scope == "region":
        leads = leads.filter(region_id=query.region_id)
    if query.source:
        leads = leads.filter(source=query.source)
    return leads


def _from_rollup(rollup: Rollup, start: dt.date, end: dt.date, *, by_region: bool) -> dict[Any, StageNumbers]:
    numbers = _stage_numbers()
    for (day, code, region, _source), values in rollup.days.items():
        if start <= day <= end:
            target = numbers[(region, code) if by_region else code].counters
            for i, value in enumerate(values):
                target[i] += value
    for (code, region, _source), (n, entered) in rollup.open.items():
        stage = numbers[(region, code) if by_region else code]
        stage.open_leads += n
        stage.entered_epoch_sum += entered
    return numbers


def period_filter(start: dt.date, end: dt.date, **also: Any) -> Q:
    """The rows that sum to the period exactly: week rows for the whole weeks inside it, day rows
    for the days before the first and after the last whole week. `also` (region, source) is
    repeated in each branch so that each is one range of an index (SQLite's OR-by-union plan)."""
    first_monday = start + dt.timedelta(days=(7 - start.weekday()) % 7)
    after_weeks = first_monday + dt.timedelta(days=((end - first_monday).days + 1) // 7 * 7)
    if first_monday > end or after_weeks <= first_monday:
        return Q(span="d", day__gte=start, day__lte=end, **also)
    return (
        Q(span="w", day__gte=first_monday, day__lt=after_weeks, **also)
        | Q(span="d", day__gte=start, day__lt=first_monday, **also)
        | Q(span="d", day__gte=after_weeks, day__lte=end, **also)
    )


def _from_tables(query: FunnelQuery, *, by_region: bool) -> dict[Any, StageNumbers]:
    """Two grouped queries over the rollups."""
    also: dict[str, Any] = {}
    if query.region_id is not None:
        also["region_id"] = query.region_id
    if query.source:
        also["source"] = query.source
    filters = period_filter(query.start, query.end, **also)
    open_filters = Q(**also)
    group = ("region_id", "stage_code") if by_region else ("stage_code",)

    def key(row: dict[str, Any]) -> Any:
        return (row["region_id"], row["stage_code"]) if by_region else row["stage_code"]

    numbers = _stage_numbers()
    sums = {name: Sum(name) for name in DAY_COUNTERS}
    for row in FunnelDay.objects.filter(filters).values(*group).annotate(**sums).order_by():
        numbers[key(row)].counters = [row[name] or 0 for name in DAY_COUNTERS]
    for row in (
        FunnelOpen.objects.filter(open_filters)
        .values(*group)
        .annotate(n=Sum("open_leads"), entered=Sum("entered_epoch_sum"))
        .order_by()
    ):
        stage = numbers[key(row)]
        stage.open_leads, stage.entered_epoch_sum = row["n"] or 0, row["entered"] or 0
    return numbers


def funnel_numbers(query: FunnelQuery, *, by_region: bool = False) -> dict[Any, StageNumbers]:
    """Per stage code (or per (region id, stage code)) sums for the query."""
    if query.scope in ("org", "region"):
        return _from_tables(query, by_region=by_region)
    leads = scope_leads(query)
    facts = lead_facts(leads)  # one query for the leads, one for their moves
    rollup = rollup_of_leads(facts, {"lead__in": leads.values("id")})
    return _from_rollup(rollup, query.start, query.end, by_region=by_region)


def histogram_median(histogram: Mapping[int, int]) -> float | None:
    """The median dwell in days, interpolated within its bucket: off by at most the bucket's width
    (1 day below 30 days, 5 below 90, 30 below 360; docs/insights.md)."""
    total = sum(histogram.values())
    if not total:
        return None
    half, seen = total / 2, 0
    for bucket in sorted(histogram):
        n = histogram[bucket]
        if n and seen + n >= half:
            low, high = bucket_bounds(bucket)
            return low + (high - low) * (half - seen) / n
        seen += n
    return None  # pragma: no cover -- the loop always reaches half


@dataclass(frozen=True)
class StageRow:
    code: str
    label: str
    piled_up: int
    pile_age_days: float | None  # mean age of the open stays, up to now
    passed: int
    converted: int
    conversion: float | None  # 0..1
    exits: int
    dwell_mean_days: float | None  # completed stays (exits in the period)
    dwell_median_days: float | None
    backward: int
    backward_rate: float | None  # 0..1


def stage_row(
    code: str, label: str, numbers: StageNumbers | None, now_epoch: int, *, last: bool = False
) -> StageRow:
    """`last`: the won stage, which has no next stage to convert to."""
    numbers = numbers or StageNumbers()
    c = numbers.counters
    piled = numbers.open_leads
    return StageRow(
        code=code,
        label=label,
        piled_up=piled,
        pile_age_days=(now_epoch * piled - numbers.entered_epoch_sum) / piled / DAY_SECONDS
        if piled
        else None,
        passed=c[ENTRIES],
        converted=c[CONVERTED],
        conversion=c[CONVERTED] / c[ENTRIES] if c[ENTRIES] and not last else None,
        exits=c[EXITS],
        dwell_mean_days=c[DWELL] / c[EXITS] / DAY_SECONDS if c[EXITS] else None,
        dwell_median_days=histogram_median(dict(enumerate(c[HISTOGRAM:]))),
        backward=c[BACKWARD],
        backward_rate=c[BACKWARD] / c[EXITS] if c[EXITS] else None,
    )


@dataclass(frozen=True)
class Stage:
    code: str
    label: str


def funnel_stages(language: str = "zh-hans") -> list[Stage]:
    """The stages of the default pipeline's version in force, in order (one query)."""
    from salesloop.pipeline.models import Stage as PipelineStage

    rows = PipelineStage.objects.filter(pipeline__is_default=True).order_by("position")
    return [Stage(s.code, s.label(language)) for s in rows]


@dataclass(frozen=True)
class FunnelHeat:
    query: FunnelQuery
    stages: list[StageRow]


def funnel_heat(*, query: FunnelQuery, language: str = "zh-hans") -> FunnelHeat:
    """C5.1: one row per stage of the default pipeline."""
    now_epoch = int(clock.now().timestamp())
    numbers = funnel_numbers(query)
    stages = funnel_stages(language)
    rows = [stage_row(s.code, s.label, numbers.get(s.code), now_epoch, last=s == stages[-1]) for s in stages]
    return FunnelHeat(query=query, stages=rows)


# ---- the cross view -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PileCell:
    """A cell of the cross view by rep: open leads in the stage now, and how many of them have
    been there longer than STALE_DAYS."""

    code: str
    label: str
    piled_up: int
    stale: int

    @property
    def stale_share(self) -> float | None:
        return self.stale / self.piled_up if self.piled_up else None


@dataclass(frozen=True)
class CrossRow:
    key: int  # region id or rep id (0: no region / nobody)
    label: str
    cells: list[Any]  # StageRow (by region) or PileCell (by rep)


@dataclass(frozen=True)
class FunnelCross:
    by: str
    stages: list[Stage]
    rows: list[CrossRow]


def funnel_cross(*, query: FunnelQuery, by: str, language: str = "zh-hans") -> FunnelCross:
    """Stages × regions (every measure, from the rollups) or stages × reps (pile-up now and its age,
    from the open leads: ownership changes without a move, so the period's flows are not split by
    rep — docs/insights.md)."""
    if by not in CROSSES:
        raise FilterError("cross", f"cross must be one of {', '.join(CROSSES)}")
    stages = funnel_stages(language)
    now_epoch = int(clock.now().timestamp())
    if by == "region":
        numbers = funnel_numbers(query, by_region=True)
        regions = (
            Region.objects.all() if query.region_id is None else Region.objects.filter(pk=query.region_id)
        )
        labels = {r.pk: r.name for r in regions}
        present = {region for region, _code in numbers} | set(labels)
        if query.region_id is not None:
            present = {query.region_id}
        rows = [
            CrossRow(
                region,
                labels.get(region, "—"),
                [
                    stage_row(s.code, s.label, numbers.get((region, s.code)), now_epoch, last=s == stages[-1])
                    for s in stages
                ],
            )
            for region in sorted(present, key=lambda r: (r == 0, labels.get(r, "")))
        ]
        return FunnelCross(by, stages, rows)
    return FunnelCross(by, stages, _cross_by_rep(query, stages))


def _cross_by_rep(query: FunnelQuery, stages: list[Stage]) -> list[CrossRow]:
    from salesloop.pipeline.models import Stage as PipelineStage

    codes = dict(PipelineStage.objects.values_list("id", "code"))
    stale_before = clock.now() - dt.timedelta(days=STALE_DAYS)
    leads = scope_leads(query).filter(status="open")
    piles: defaultdict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    for owner_id, stage_id, n, stale in (
        leads.values("owner_id", "stage_id")
        .annotate(n=Count("id"), stale=Count("id", filter=Q(stage_entered_at__lt=stale_before)))
        .values_list("owner_id", "stage_id", "n", "stale")
        .order_by()
    ):
        pile = piles[(owner_id or 0, codes.get(stage_id, ""))]
        pile[0] += n
        pile[1] += stale
    owners = {owner for owner, _code in piles}
    labels = {u.pk: str(u) for u in User.objects.filter(pk__in=owners)}
    rows = []
    for owner in sorted(owners, key=lambda o: (o == 0, labels.get(o, ""))):
        cells = []
        for s in stages:
            n, stale = piles.get((owner, s.code), (0, 0))
            cells.append(PileCell(s.code, s.label, n, stale))
        rows.append(CrossRow(owner, labels.get(owner, "—"), cells))
    return rows
