"""The funnel heat map (SPEC C5.1): per stage, for a scope, source and period — leads piled up
now, leads that passed through, conversion to a later stage, mean and median dwell, backward-move
rate — and the cross view of stages × regions or × reps. Read-only; definitions in
docs/insights.md.

Every scope reads the rollups (`insights.models.funnel`): a fixed number of small grouped queries
whatever the number of leads. Organisation and region scopes (and the cross view by region) read
the pair keyed by the lead's region; team and rep scopes (and the cross view by rep) the pair keyed
by the lead's current owner — a rep's funnel counts the leads they own now, a team's those its
members own now.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet, Sum
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
    bucket_bounds,
)
from salesloop.insights.models import FunnelDay, FunnelOpen, FunnelOwnerDay, FunnelOwnerOpen

SCOPES = ("org", "region", "team", "rep")
CROSSES = ("region", "rep")
SCOPES_PARAMS = ("scope", "region", "team", "rep", "source", "start", "end", "cross", "measure")
DEFAULT_PERIOD_DAYS = 90
MAX_PERIOD_DAYS = 731
MIN_YEAR, MAX_YEAR = 2000, 2100  # beyond, date arithmetic (the period before) would overflow


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
    """The leads of a scope (the lead's region; a team's or rep's current owner), with the source
    filter."""
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


def scope_owners(query: FunnelQuery) -> dict[str, Any]:
    """Lookups on an owner-keyed rollup for the owners of a scope: the rep; the team's members; the
    region's people; everyone (no lookup) for the organisation."""
    if query.scope == "rep":
        return {"owner_id": query.rep_id}
    if query.scope == "team":
        return {"owner_id__in": User.objects.filter(team_id=query.team_id).values("id")}
    if query.scope == "region":
        return {"owner_id__in": User.objects.filter(region_id=query.region_id).values("id")}
    return {}


def period_filter(start: dt.date, end: dt.date, *, today: dt.date | None = None, **also: Any) -> Q:
    """The rows that sum to the period exactly: week rows for the whole weeks inside it, day rows
    for the days before the first and after the last whole week. `also` (region, source) is
    repeated in each branch so that each is one range of an index (SQLite's OR-by-union plan).

    No move is dated after today (moves are appended as they happen), so a period that reaches
    today may read the current week from its week row: the days of it after today hold nothing.
    The usual "last N days" period so reads at most 6 day rows per key instead of up to 12."""
    today = today or clock.today_local()
    if end >= today:
        end = max(end, today + dt.timedelta(days=6 - today.weekday()))  # the Sunday of today's week
    first_monday = start + dt.timedelta(days=(7 - start.weekday()) % 7)
    after_weeks = first_monday + dt.timedelta(days=((end - first_monday).days + 1) // 7 * 7)
    if first_monday > end or after_weeks <= first_monday:
        return Q(span="d", day__gte=start, day__lte=end, **also)
    return (
        Q(span="w", day__gte=first_monday, day__lt=after_weeks, **also)
        | Q(span="d", day__gte=start, day__lt=first_monday, **also)
        | Q(span="d", day__gte=after_weeks, day__lte=end, **also)
    )


def funnel_numbers(query: FunnelQuery, *, by: str | None = None) -> dict[Any, StageNumbers]:
    """Per stage code — or, with `by` "region" or "rep", per (region id or owner id, stage code) —
    sums for the query: two grouped queries over one pair of rollups."""
    by_owner = by == "rep" or (by is None and query.scope in ("team", "rep"))
    day_model, open_model = (FunnelOwnerDay, FunnelOwnerOpen) if by_owner else (FunnelDay, FunnelOpen)
    also: dict[str, Any] = {}
    if by_owner:
        also.update(scope_owners(query))
    elif query.region_id is not None:
        also["region_id"] = query.region_id
    if query.source:
        also["source"] = query.source
    who = {"region": "region_id", "rep": "owner_id"}.get(by or "")
    group = (who, "stage_code") if who else ("stage_code",)

    def key(row: dict[str, Any]) -> Any:
        return (row[who], row["stage_code"]) if who else row["stage_code"]

    numbers = _stage_numbers()
    sums = {name: Sum(name) for name in DAY_COUNTERS}
    for row in (
        day_model.objects.filter(period_filter(query.start, query.end, **also))
        .values(*group)
        .annotate(**sums)
        .order_by()
    ):
        numbers[key(row)].counters = [row[name] or 0 for name in DAY_COUNTERS]
    for row in (
        open_model.objects.filter(**also)
        .values(*group)
        .annotate(n=Sum("open_leads"), entered=Sum("entered_epoch_sum"))
        .order_by()
    ):
        stage = numbers[key(row)]
        stage.open_leads, stage.entered_epoch_sum = row["n"] or 0, row["entered"] or 0
    return numbers


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
class CrossRow:
    key: int  # region id or rep id (0: no region / nobody)
    label: str
    cells: list[StageRow]


@dataclass(frozen=True)
class FunnelCross:
    by: str
    stages: list[Stage]
    rows: list[CrossRow]


def funnel_cross(*, query: FunnelQuery, by: str, language: str = "zh-hans") -> FunnelCross:
    """Stages × regions (the rollups by the lead's region) or stages × reps (the rollups by the
    lead's current owner), every measure of the heat map in each cell. By rep, the rows are the
    people of the scope: the rep, the team's members, the region's people, or everyone with leads;
    each row counts that person's whole book (docs/insights.md, "Scopes")."""
    if by not in CROSSES:
        raise FilterError("cross", f"cross must be one of {', '.join(CROSSES)}")
    stages = funnel_stages(language)
    now_epoch = int(clock.now().timestamp())
    numbers = funnel_numbers(query, by=by)
    present = {who for who, _code in numbers}
    if by == "region":
        regions = (
            Region.objects.all() if query.region_id is None else Region.objects.filter(pk=query.region_id)
        )
        labels = {r.pk: r.name for r in regions}
        present = {query.region_id} if query.region_id is not None else present | set(labels)
    else:
        ids = {who for who in present if who}
        if query.scope == "rep":
            ids.add(query.rep_id)  # type: ignore[arg-type]
        elif query.scope == "team":  # every member has a row, with or without leads
            ids |= set(User.objects.filter(team_id=query.team_id).values_list("pk", flat=True))
        labels = {u.pk: str(u) for u in User.objects.filter(pk__in=ids)}
        present |= ids
    rows = [
        CrossRow(
            who,
            labels.get(who, "—"),
            [
                stage_row(s.code, s.label, numbers.get((who, s.code)), now_epoch, last=s == stages[-1])
                for s in stages
            ],
        )
        for who in sorted(present, key=lambda w: (w == 0, labels.get(w, ""), w))
    ]
    return FunnelCross(by, stages, rows)
