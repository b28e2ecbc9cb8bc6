"""Periods of the indicators: days and ISO weeks (Monday first) counted in the organisation's time
zone (DESIGN.md rule 6). A period is evaluated at its end, or now while it is still running."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from salesloop.core import clock
from salesloop.insights.models.indicators import Granularity


@dataclass(frozen=True)
class Period:
    granularity: str
    start: dt.date

    @property
    def days(self) -> int:
        return 7 if self.granularity == Granularity.WEEK else 1

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days)

    @property
    def starts_at(self) -> dt.datetime:
        return local_midnight(self.start)

    @property
    def ends_at(self) -> dt.datetime:
        return local_midnight(self.end)

    def instant(self, now: dt.datetime | None = None) -> dt.datetime:
        """The moment the period is evaluated at: its end, or now if it has not ended."""
        return min(self.ends_at, now or clock.now())

    def shifted(self, periods: int) -> Period:
        return Period(self.granularity, self.start + dt.timedelta(days=self.days * periods))

    def minus_days(self, days: int) -> Period:
        return Period(self.granularity, self.start - dt.timedelta(days=days))

    def label(self) -> str:
        if self.granularity == Granularity.WEEK:
            return f"{self.start:%m-%d}–{self.end - dt.timedelta(days=1):%m-%d}"
        return f"{self.start:%m-%d}"


def local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=clock.org_tz()).astimezone(dt.UTC)


def period_of(day: dt.date, granularity: str) -> Period:
    if granularity == Granularity.WEEK:
        return Period(granularity, day - dt.timedelta(days=day.weekday()))
    return Period(granularity, day)


def periods_between(first: dt.date, last: dt.date, granularity: str, *, limit: int = 60) -> list[Period]:
    """The periods covering [first, last], oldest first, at most `limit` (the newest ones)."""
    periods = []
    period = period_of(last, granularity)
    while period.end > first and len(periods) < limit:
        periods.append(period)
        period = period.shifted(-1)
    return list(reversed(periods))
