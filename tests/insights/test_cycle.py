"""Lead cycle time (SPEC C5.3): arrival → won by week, stage to stage, and the comparison of the
period with the one before it ("shortened by 2.4 days")."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation

from salesloop.core import clock
from salesloop.insights.cycle import ARRIVAL_TO_WON, cycle_trend
from salesloop.insights.funnel import funnel_query_parse
from tests.factories import lead_make
from tests.insights.conftest import START, days, move

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_wins(org):
    """Given a lead won after 5.4 days in the week of 2 November and one won after 3.0 days in the
    week of 9 November."""
    clock.set_now(START)
    first = lead_make(owner=org.alice)
    days(5.4)
    move(first, "contract_signed", org.alice, status="won")  # 7 Nov 18:36 Shanghai
    second = lead_make(owner=org.bob, province="32")
    days(3)
    move(second, "contract_signed", org.bob, status="won")  # 10 Nov
    days(1)


def test_the_period_against_the_one_before_says_by_how_much_the_cycle_shortened(two_wins, org):
    query = funnel_query_parse(user=org.director, params={"start": "2026-11-09", "end": "2026-11-15"})
    trend = cycle_trend(query=query)
    assert (trend.previous.start, trend.previous.end) == (dt.date(2026, 11, 2), dt.date(2026, 11, 8))
    assert (trend.previous.days, trend.current.days) == (5.4, 3.0)
    assert trend.change_days == pytest.approx(-2.4)
    with translation.override("zh-hans"):
        assert "缩短了 2.4 天" in trend.sentence
    with translation.override("en"):
        assert "shortened by 2.4 days" in trend.sentence


def test_the_weekly_trend_has_one_point_per_week_with_the_mean(two_wins, org):
    query = funnel_query_parse(user=org.director, params={"start": "2026-11-02", "end": "2026-11-15"})
    trend = cycle_trend(query=query)
    assert trend.weeks == [dt.date(2026, 11, 2), dt.date(2026, 11, 9)]
    arrival = next(s for s in trend.series if s.key == ARRIVAL_TO_WON)
    assert arrival.days == [5.4, 3.0]
    assert arrival.counts == [1, 1]
    # the stage-to-stage series: screening stays that ended forward (straight to the won stage)
    screening = next(s for s in trend.series if s.key == "screening")
    assert screening.days == [5.4, 3.0]


def test_a_reps_cycle_time_counts_only_their_own_wins(two_wins, org):
    query = funnel_query_parse(user=org.bob, params={"start": "2026-11-02", "end": "2026-11-15"})
    arrival = next(s for s in cycle_trend(query=query).series if s.key == ARRIVAL_TO_WON)
    assert arrival.days == [None, 3.0]


def test_without_wins_in_both_periods_the_comparison_says_so(history, org):
    trend = cycle_trend(query=funnel_query_parse(user=org.director, params={}))
    assert trend.change_days is None
    with translation.override("en"):
        assert "Not enough won leads" in trend.sentence
