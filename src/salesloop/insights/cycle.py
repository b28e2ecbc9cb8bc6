"""Lead cycle time (SPEC C5.3): arrival → won, and each stage to the next, as a trend by week, and
the comparison of the period with the one before ("shortened by 2.4 days").

Read from the same rollups as the heat map (`FunnelDay.wins / win_cycle_seconds` on the won day,
`exits_forward / forward_dwell_seconds` on the day a stay ended forward) — by the lead's region for
the organisation and a region, by its current owner for a team or a rep. Weeks start on Monday in
the organisation's time zone; a week's value is the mean over the leads won (or stays ended forward) in it."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, Sum
from django.utils.translation import gettext as _

from salesloop.insights.funnel import FunnelQuery, funnel_stages, scope_owners
from salesloop.insights.funnel_rollup import DAY_SECONDS, week_start
from salesloop.insights.models import FunnelDay, FunnelOwnerDay

ARRIVAL_TO_WON = "arrival_to_won"
_FIELDS = ("wins", "win_cycle_seconds", "exits_forward", "forward_dwell_seconds")


def _daily(query: FunnelQuery, start: dt.date, end: dt.date) -> dict[tuple[dt.date, str], list[int]]:
    """(day, stage code) → [wins, win cycle seconds, forward exits, forward dwell seconds]: one
    grouped query over the rollups by region (organisation, region) or by owner (team, rep)."""
    out: dict[tuple[dt.date, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    filters = Q(span="d", day__gte=start, day__lte=end)
    if query.scope in ("team", "rep"):
        model: Any = FunnelOwnerDay
        filters &= Q(**scope_owners(query))
    else:
        model = FunnelDay
        if query.region_id is not None:
            filters &= Q(region_id=query.region_id)
    if query.source:
        filters &= Q(source=query.source)
    rows = (
        model.objects.filter(filters)
        .filter(Q(wins__gt=0) | Q(exits_forward__gt=0))
        .values("day", "stage_code")
        .annotate(**{name: Sum(name) for name in _FIELDS})
        .order_by()
    )
    for row in rows:
        out[(row["day"], row["stage_code"])] = [row[name] or 0 for name in _FIELDS]
    return out


@dataclass(frozen=True)
class Series:
    key: str  # ARRIVAL_TO_WON or a stage code (its stay until the forward move)
    label: str
    days: list[float | None]  # mean days per week, None for a week with nothing
    counts: list[int]


@dataclass(frozen=True)
class PeriodMean:
    start: dt.date
    end: dt.date
    days: float | None
    count: int


@dataclass(frozen=True)
class CycleTrend:
    weeks: list[dt.date]
    series: list[Series]
    current: PeriodMean
    previous: PeriodMean

    @property
    def change_days(self) -> float | None:
        """Current minus previous mean arrival → won (negative: shorter)."""
        if self.current.days is None or self.previous.days is None:
            return None
        return self.current.days - self.previous.days

    @property
    def sentence(self) -> str:
        change = self.change_days
        if change is None:
            return _("Not enough won leads in both periods to compare the cycle time.")
        amount = f"{abs(change):.1f}"
        if round(change, 1) < 0:
            return _("Lead cycle time shortened by %(days)s days against the previous period.") % {
                "days": amount
            }
        if round(change, 1) > 0:
            return _("Lead cycle time lengthened by %(days)s days against the previous period.") % {
                "days": amount
            }
        return _("Lead cycle time is unchanged against the previous period.")


def _mean(total_seconds: int, n: int) -> float | None:
    return round(total_seconds / n / DAY_SECONDS, 2) if n else None


def cycle_trend(*, query: FunnelQuery, language: str = "zh-hans") -> CycleTrend:
    """C5.3: weekly means over the query's period, and its mean arrival → won against the period of
    the same length just before it. Two queries on the rollups (stages, then the days)."""
    previous_end = query.start - dt.timedelta(days=1)
    previous_start = previous_end - dt.timedelta(days=query.days - 1)
    daily = _daily(query, previous_start, query.end)
    stages = funnel_stages(language)
    weeks: list[dt.date] = []
    week = week_start(query.start)
    while week <= query.end:
        weeks.append(week)
        week += dt.timedelta(days=7)
    index = {w: i for i, w in enumerate(weeks)}
    sums: dict[str, list[list[int]]] = {
        key: [[0, 0] for _ in weeks] for key in [ARRIVAL_TO_WON, *(s.code for s in stages)]
    }
    periods = {"current": [0, 0], "previous": [0, 0]}
    for (day, code), (wins, win_seconds, forward, forward_seconds) in daily.items():
        if day < query.start:
            periods["previous"][0] += wins
            periods["previous"][1] += win_seconds
            continue
        periods["current"][0] += wins
        periods["current"][1] += win_seconds
        i = index[week_start(day)]
        sums[ARRIVAL_TO_WON][i][0] += wins
        sums[ARRIVAL_TO_WON][i][1] += win_seconds
        if code in sums and forward:
            sums[code][i][0] += forward
            sums[code][i][1] += forward_seconds
    labels = {ARRIVAL_TO_WON: _("Arrival → won"), **{s.code: s.label for s in stages}}
    series = [
        Series(key, str(labels[key]), [_mean(s, n) for n, s in cells], [n for n, _s in cells])
        for key, cells in sums.items()
        if key == ARRIVAL_TO_WON or any(n for n, _s in cells)
    ]
    current = PeriodMean(
        query.start, query.end, _mean(periods["current"][1], periods["current"][0]), periods["current"][0]
    )
    previous = PeriodMean(
        previous_start,
        previous_end,
        _mean(periods["previous"][1], periods["previous"][0]),
        periods["previous"][0],
    )
    return CycleTrend(weeks=weeks, series=series, current=current, previous=previous)
