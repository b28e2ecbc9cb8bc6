"""Helpers for the indicator tests (conftest.py registers their fixtures): leads that arrive,
move and get touched at given local times,
through the real services (the clock is set for each fact)."""

from __future__ import annotations

import datetime as dt

import pytest

from salesloop.core import clock
from salesloop.crm.models import Lead
from salesloop.engagement import services as engagement
from salesloop.pipeline.models import Stage
from salesloop.pipeline.services import lead_move_stage
from tests.factories import lead_make, lead_ready_for

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def local(day: str, hour: int = 0, minute: int = 0) -> dt.datetime:
    """A moment in Asia/Shanghai, e.g. local("2026-11-16", 9) is Monday 09:00 there."""
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour, minute), tzinfo=SHANGHAI)


def arrive(owner, when: dt.datetime, province: str = "31", title: str = "") -> Lead:
    with clock.frozen(when):
        return lead_make(owner=owner, province=province, title=title or f"lead {when:%m-%d %H:%M}")


def move(
    lead: Lead, code: str, when: dt.datetime, *, actor, status: str | None = None, reason: str = ""
) -> Lead:
    with clock.frozen(when):
        if status is None:
            lead_ready_for(lead, code)
        lead.refresh_from_db()
        stage = Stage.objects.get(pipeline_id=lead.pipeline_id, code=code)
        lead_move_stage(actor=actor, lead=lead, to_stage=stage, status=status, reason=reason)
    lead.refresh_from_db()
    return lead


def lose(lead: Lead, when: dt.datetime, *, actor) -> Lead:
    with clock.frozen(when):
        lead.refresh_from_db()
        lead_move_stage(actor=actor, lead=lead, status="lost", reason="预算取消")
    lead.refresh_from_db()
    return lead


def touch(lead: Lead, when: dt.datetime, *, actor, responded: bool | None, direction: str = "outbound"):
    with clock.frozen(when + dt.timedelta(minutes=1)):
        return engagement.touch_record(
            actor=actor,
            lead=lead,
            kind="call",
            direction=direction,
            responded=responded if direction == "outbound" else None,
            at=when,
        )


def thresholds_for_tests(admin, **overrides):
    """Thresholds v1, in force from 2026-10-01: the source's numbers, but a 7-day conversion window
    (weekly cohorts that do not overlap, easy to count by hand) and a 2-touch minimum for a drop."""
    from salesloop.insights.indicators.thresholds import indicator_thresholds_create

    values = {"conversion_window_days": 7, "response_drop_min_touches": 2, **overrides}
    with clock.frozen(local("2026-10-01")):
        return indicator_thresholds_create(actor=admin, values=values)


@pytest.fixture
def conversion_data(org):
    """Week 1 (11-09…11-15) and week 2 (11-16…11-22). alice: 1 of 4 leads reached 需求确认 in
    week 1, 1 of 5 in week 2 (a 5th reached it only on 11-24, after the week). bob: 1 of 1 in
    week 2. erin (华南): 1 lead in week 2, never moved."""
    thresholds_for_tests(org.admin)
    admin = org.admin
    leads = {}
    leads["L1"] = arrive(org.alice, local("2026-11-09", 10))
    move(leads["L1"], "needs_confirmed", local("2026-11-11", 10), actor=admin)
    for name, day in [("L2", "2026-11-10"), ("L3", "2026-11-12"), ("L4", "2026-11-14")]:
        leads[name] = arrive(org.alice, local(day, 10))
    leads["L5"] = arrive(org.alice, local("2026-11-16", 10))
    move(leads["L5"], "needs_confirmed", local("2026-11-18", 10), actor=admin)
    for name, day in [("L6", "2026-11-17"), ("L7", "2026-11-18"), ("L8", "2026-11-19")]:
        leads[name] = arrive(org.alice, local(day, 10))
    leads["L9"] = arrive(org.alice, local("2026-11-21", 10))
    move(leads["L9"], "needs_confirmed", local("2026-11-24", 10), actor=admin)
    leads["L10"] = arrive(org.bob, local("2026-11-17", 10))
    move(leads["L10"], "needs_confirmed", local("2026-11-17", 15), actor=admin)
    leads["L11"] = arrive(org.erin, local("2026-11-17", 10), province="44")
    clock.set_now(local("2026-11-25", 10))
    return leads
