"""A small, exactly known funnel history shared by the insights tests (docs/insights.md works the
same example by hand)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from salesloop.core import clock
from salesloop.crm.models import Lead
from salesloop.pipeline.models import Stage
from salesloop.pipeline.services import lead_move_stage
from tests.factories import lead_make, lead_ready_for

START = dt.datetime(2026, 11, 2, 1, 0, tzinfo=dt.UTC)  # Monday 09:00 in Shanghai


def move(lead: Lead, code: str, actor, *, status: str | None = None, reason: str = "") -> Lead:
    lead = lead_ready_for(lead, code)
    target = Stage.objects.get(pipeline__is_default=True, code=code)
    lead_move_stage(actor=actor, lead=lead, to_stage=target, status=status, reason=reason)
    lead.refresh_from_db()
    return lead


def days(n: float) -> None:
    clock.advance(dt.timedelta(days=n))


@dataclass
class History:
    a: Lead  # alice's, 华东: screening → needs → back → needs → demo (open)
    b: Lead  # bob's, 华东, from a Douyin form: lost in screening after 5 days
    c: Lead  # erin's, 华南: still in screening
    d: Lead  # alice's, 华东: won after 10 days
    now: dt.datetime


@pytest.fixture
def history(org) -> History:
    """Given four leads moved on known days (all in November 2026, Shanghai)."""
    clock.set_now(START)
    a = lead_make(owner=org.alice, province="31")
    b = lead_make(owner=org.bob, province="32", source="douyin")
    c = lead_make(owner=org.erin, province="44")
    d = lead_make(owner=org.alice, province="31", source="referral")
    days(2)
    a = move(a, "needs_confirmed", org.alice)  # screening stay of 2 days, forward
    days(3)
    a = move(a, "screening", org.alice, reason="客户预算冻结")  # needs stay of 3 days, backward
    b = move(b, "screening", org.bob, status="lost", reason="空号")  # screening 5 days, closed
    days(1)
    a = move(a, "needs_confirmed", org.alice)  # screening 1 day, forward
    days(4)
    a = move(a, "solution_demo", org.alice)  # needs 4 days, forward
    d = move(d, "quote_negotiation", org.alice)  # screening 10 days, forward (skips two)
    d = move(d, "contract_signed", org.alice, status="won")  # quote 0 days, won: cycle 10 days
    days(2)
    return History(a=a, b=b, c=c, d=d, now=clock.now())


# The indicator tests' fixtures (their helpers live in indicator_helpers.py).
from tests.insights.indicator_helpers import _media_in_tmp, conversion_data  # noqa: E402, F401
