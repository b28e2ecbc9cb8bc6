"""The one clock of salesloop (DESIGN.md rule 6): aware UTC datetimes, settable by tests.

Code asks `clock.now()` instead of `timezone.now()` so that tests (and the demo generator) can
pin time. The override is per process on purpose: it exists for tests, never for production.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

_frozen: dt.datetime | None = None
# Lets a test or benchmark pin time in a server subprocess it starts. Read once, when the process
# starts: reading the environment on every call was 2.6% of a webhook burst's time (profiled).
_FAKE_NOW = os.environ.get("SALESLOOP_FAKE_NOW", "")


def now() -> dt.datetime:
    if _frozen is not None:
        return _frozen
    if _FAKE_NOW:
        return _parse_aware(_FAKE_NOW)
    return timezone.now()


def today_local() -> dt.date:
    """Today in the organisation's time zone (days are counted there, not in UTC)."""
    return now().astimezone(org_tz()).date()


def org_tz() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def set_now(moment: dt.datetime | None) -> None:
    global _frozen
    if moment is not None and timezone.is_naive(moment):
        raise ValueError("the clock only takes aware datetimes")
    _frozen = moment


def advance(delta: dt.timedelta) -> dt.datetime:
    set_now(now() + delta)
    return now()


@contextlib.contextmanager
def frozen(moment: dt.datetime) -> Iterator[None]:
    previous = _frozen
    set_now(moment)
    try:
        yield
    finally:
        set_now(previous)


def _parse_aware(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    if timezone.is_naive(moment):
        raise ValueError(f"SALESLOOP_FAKE_NOW={text!r} must carry a UTC offset")
    return moment
