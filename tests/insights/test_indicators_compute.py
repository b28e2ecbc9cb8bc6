"""The three leading indicators (SPEC C9) on small hand-built datasets, each value worked out by
hand in the test, with the source's warning rules including the compound ones."""

from __future__ import annotations

import datetime as dt

from salesloop.accounts.models import Team
from salesloop.core import clock
from salesloop.insights.indicators.compute import Scope, Series
from salesloop.insights.indicators.facts import indicator_facts_rebuild
from salesloop.insights.indicators.periods import period_of
from salesloop.insights.indicators.thresholds import DEFAULTS, thresholds_in_force
from salesloop.insights.models.indicators import (
    IndicatorArrivalDay,
    IndicatorLead,
    IndicatorSpan,
    IndicatorStallDay,
    IndicatorTouch,
    IndicatorTouchDay,
)
from tests.insights.indicator_helpers import arrive, local, lose, move, thresholds_for_tests, touch

WEEK1 = period_of(dt.date(2026, 11, 9), "week")
WEEK2 = period_of(dt.date(2026, 11, 16), "week")
WEEK3 = period_of(dt.date(2026, 11, 23), "week")


def series(indicator: str, scope: Scope) -> Series:
    return Series(indicator, scope, thresholds_in_force())


# --- conversion ---------------------------------------------------------------------------------


def test_conversion_counts_the_week_cohort_that_reached_needs_confirmed_before_the_week_ended(
    org, conversion_data
):
    # given alice's weeks: 1 of 4 (week 1), 1 of 5 (week 2; L9 reached 需求确认 only after it)
    alice = series("conversion", Scope("rep", org.alice.pk))
    # then
    assert (alice.inputs(WEEK1).numerator, alice.inputs(WEEK1).denominator) == (1, 4)
    assert (alice.inputs(WEEK2).numerator, alice.inputs(WEEK2).denominator) == (1, 5)
    assert alice.inputs(WEEK2).value == 0.2


def test_conversion_warns_only_when_below_30_percent_two_weeks_in_a_row(org, conversion_data):
    alice = series("conversion", Scope("rep", org.alice.pk))
    # week 1: 25 % < 30 %, but the week before had no lead: watch, not warning
    assert alice.verdict(WEEK1).status == "watch"
    # week 2: 20 % and week 1 25 %: two weeks in a row → warning, and it is the entry into warning
    verdict = alice.verdict(WEEK2)
    assert verdict.status == "warning"
    assert verdict.rule == "conversion_warning"
    assert alice.entered_warning(WEEK2) is True


def test_conversion_of_region_team_and_org_count_their_own_leads(org, conversion_data):
    team = Team.objects.create(name="华东一组", region=org.east)
    org.alice.team = team
    org.alice.save()
    # region 华东 week 2: alice 1/5 + bob 1/1 = 2/6 = 33.3 % → between the lines: watch
    east = series("conversion", Scope("region", org.east.pk))
    assert (east.inputs(WEEK2).numerator, east.inputs(WEEK2).denominator) == (2, 6)
    assert east.verdict(WEEK2).status == "watch"
    # the team holds alice only
    assert series("conversion", Scope("team", team.pk)).inputs(WEEK2).denominator == 5
    # the organisation adds erin's lead in 华南: 2/7
    whole = series("conversion", Scope("org"))
    assert (whole.inputs(WEEK2).numerator, whole.inputs(WEEK2).denominator) == (2, 7)
    # and bob alone converted all his: healthy
    assert series("conversion", Scope("rep", org.bob.pk)).verdict(WEEK2).status == "healthy"


def test_daily_conversion_at_the_weeks_last_day_equals_the_weekly_value(org, conversion_data):
    # with a 7-day window, Sunday 11-22's daily cohort is week 2's; "two weeks in a row" compares
    # with the value a week earlier (Sunday 11-15: week 1's cohort)
    daily = series("conversion", Scope("rep", org.alice.pk))
    sunday = period_of(dt.date(2026, 11, 22), "day")
    assert (daily.inputs(sunday).numerator, daily.inputs(sunday).denominator) == (1, 5)
    assert daily.verdict(sunday).status == "warning"


# --- stall index --------------------------------------------------------------------------------


def stall_data(org):
    """bob's open leads at T = 11-23 00:00 (end of week 2): S1 初筛 2 days, S2 初筛 4 days, S3 方案演示
    12 days, S4 方案演示 6 days; S5 lost before T, S6 arrived after T."""
    thresholds_for_tests(org.admin)
    admin = org.admin
    arrive(org.bob, local("2026-11-21"))  # S1
    arrive(org.bob, local("2026-11-19"))  # S2
    s3 = arrive(org.bob, local("2026-11-01"))
    move(s3, "needs_confirmed", local("2026-11-05"), actor=admin)
    move(s3, "solution_demo", local("2026-11-11"), actor=admin)
    s4 = arrive(org.bob, local("2026-11-01"))
    move(s4, "solution_demo", local("2026-11-17"), actor=admin)
    s5 = arrive(org.bob, local("2026-11-01"))
    lose(s5, local("2026-11-20"), actor=admin)
    arrive(org.bob, local("2026-11-24"))  # S6
    clock.set_now(local("2026-11-25", 10))


def test_stall_index_is_the_weighted_mean_dwell_of_the_open_leads_and_warns_with_demo_piling_up(org):
    stall_data(org)
    bob = series("stall", Scope("rep", org.bob.pk))
    inputs = bob.inputs(WEEK2)
    # 初筛: mean (2 + 4) / 2 = 3 days × 2 leads = 6; 方案演示: mean (12 + 6) / 2 = 9 × 2 = 18
    # index = (6 + 18) / 4 open leads = 6.0 days > 5.5, and 方案演示 holds 2/4 = 50 % > 45 %
    assert inputs.denominator == 4
    assert inputs.numerator == 24.0
    assert inputs.value == 6.0
    assert inputs.details["stages"] == [
        {"rank": 1, "leads": 2, "mean_dwell_days": 3.0},
        {"rank": 3, "leads": 2, "mean_dwell_days": 9.0},
    ]
    assert inputs.details["demo_share"] == 0.5
    assert bob.verdict(WEEK2).status == "warning"
    # the region (summed from the day ledgers) holds bob's leads only: the same numbers
    east = series("stall", Scope("region", org.east.pk)).inputs(WEEK2)
    assert (east.numerator, east.denominator, east.details) == (24.0, 4, inputs.details)


def test_stall_above_the_line_without_the_demo_pile_up_is_only_watch(org):
    stall_data(org)
    # given one more open lead in 报价谈判 since 11-13: 10 days
    s7 = arrive(org.bob, local("2026-11-02"))
    move(s7, "quote_negotiation", local("2026-11-13"), actor=org.admin)
    clock.set_now(local("2026-11-25", 10))
    bob = series("stall", Scope("rep", org.bob.pk))
    # (6 + 18 + 10) / 5 = 6.8 days > 5.5, but 方案演示 holds 2/5 = 40 % ≤ 45 %
    assert bob.inputs(WEEK2).value == 6.8
    assert bob.inputs(WEEK2).details["demo_share"] == 0.4
    assert bob.verdict(WEEK2).status == "watch"


# --- response rate ------------------------------------------------------------------------------


def response_data(org):
    """erin's two leads: Q at 报价谈判 since 11-05, S in 初筛. Week 1: Q 3 of 4 answered, S 2 of 2.
    Week 2: Q 1 of 4, S 3 of 6 (one with the answer still unknown), plus an inbound call."""
    thresholds_for_tests(org.admin)
    q = arrive(org.erin, local("2026-11-01"), province="44")
    move(q, "quote_negotiation", local("2026-11-05"), actor=org.admin)
    s = arrive(org.erin, local("2026-11-01"), province="44")
    for day, answers in [("2026-11-10", [True, True, True, False])]:
        for i, answered in enumerate(answers):
            touch(q, local(day, 9 + i), actor=org.erin, responded=answered)
    for i, answered in enumerate([True, True]):
        touch(s, local("2026-11-11", 9 + i), actor=org.erin, responded=answered)
    for i, answered in enumerate([True, False, False, False]):
        touch(q, local("2026-11-17", 9 + i), actor=org.erin, responded=answered)
    for i, answered in enumerate([True, True, True, False, False, None]):
        touch(s, local("2026-11-18", 9 + i), actor=org.erin, responded=answered)
    touch(s, local("2026-11-19", 9), actor=org.erin, responded=None, direction="inbound")
    return q, s


def test_response_rate_counts_answered_outbound_touches_and_the_quote_stage_apart(org):
    response_data(org)
    clock.set_now(local("2026-11-25", 10))
    erin = series("response", Scope("rep", org.erin.pk))
    # week 1: 5 of 6 answered; at 报价谈判 3 of 4
    assert (erin.inputs(WEEK1).numerator, erin.inputs(WEEK1).denominator) == (5, 6)
    assert erin.inputs(WEEK1).details["quote_rate"] == 0.75
    # week 2: (1 + 3) of (4 + 6) = 40 %; the inbound call is no outbound touch; at 报价谈判 1 of 4
    inputs = erin.inputs(WEEK2)
    assert (inputs.numerator, inputs.denominator) == (4, 10)
    assert inputs.details["quote_rate"] == 0.25
    # the region (summed from the day ledgers) holds erin's leads only: the same numbers
    south = series("response", Scope("region", org.south.pk)).inputs(WEEK2)
    assert (south.numerator, south.denominator, south.details) == (4, 10, inputs.details)


def test_response_rate_warns_below_48_percent_with_a_sharp_drop_at_quote(org):
    response_data(org)
    clock.set_now(local("2026-11-25", 10))
    erin = series("response", Scope("rep", org.erin.pk))
    # 40 % < 48 %, and 报价谈判 fell from 75 % to 25 %: 50 points ≥ 15 → warning
    drop = erin.sharp_drop(WEEK2)
    assert drop["drop_points"] == 0.5 and drop["sharp"] is True
    assert erin.verdict(WEEK2).status == "warning"
    # under the source's 10-touch minimum the 4 touches at 报价谈判 are too few to call a drop
    strict = Series("response", Scope("rep", org.erin.pk), DEFAULTS)
    assert strict.sharp_drop(WEEK2)["enough_touches"] is False
    assert strict.verdict(WEEK2).status == "watch"


def test_response_rate_low_without_a_drop_at_quote_is_only_watch(org):
    q, s = response_data(org)
    # week 3 repeats week 2's answers: 40 % again, but 报价谈判 stays at 25 %: no drop
    for i, answered in enumerate([True, False, False, False]):
        touch(q, local("2026-11-24", 9 + i), actor=org.erin, responded=answered)
    for i, answered in enumerate([True, True, True, False, False, False]):
        touch(s, local("2026-11-25", 9 + i), actor=org.erin, responded=answered)
    clock.set_now(local("2026-12-01", 10))
    erin = series("response", Scope("rep", org.erin.pk))
    assert erin.inputs(WEEK3).value == 0.4
    assert erin.sharp_drop(WEEK3)["sharp"] is False
    assert erin.verdict(WEEK3).status == "watch"


def test_a_response_learned_later_counts_once_known(org):
    from salesloop.engagement.services import touch_response_record

    thresholds_for_tests(org.admin)
    lead = arrive(org.erin, local("2026-11-01"), province="44")
    pending = touch(lead, local("2026-11-17", 9), actor=org.erin, responded=None)
    clock.set_now(local("2026-11-25", 10))
    assert series("response", Scope("rep", org.erin.pk)).inputs(WEEK2).numerator == 0
    touch_response_record(actor=org.erin, touch=pending, responded=True)
    assert series("response", Scope("rep", org.erin.pk)).inputs(WEEK2).numerator == 1


# --- the derived facts --------------------------------------------------------------------------


def _rows():
    def nonzero(model, *fields):
        return sorted(row for row in model.objects.values_list(*fields) if any(row[-2:]))

    return (
        sorted(
            IndicatorLead.objects.values_list(
                "lead_id", "region_id", "owner_id", "arrived_at", "needs_confirmed_at"
            )
        ),
        sorted(
            IndicatorSpan.objects.values_list(
                "lead_id", "owner_id", "rank", "entered_at", "entered_s", "left_at"
            )
        ),
        sorted(
            IndicatorTouch.objects.values_list("touch_id", "lead_id", "owner_id", "at", "rank", "responded")
        ),
        nonzero(IndicatorArrivalDay, "arrival_day", "needs_day", "region_id", "leads", "leads"),
        nonzero(IndicatorStallDay, "day", "region_id", "rank", "leads", "entered_s"),
        nonzero(IndicatorTouchDay, "day", "region_id", "rank", "touches", "responded"),
    )


def test_the_rows_kept_by_the_hooks_equal_a_rebuild_from_the_facts(org, conversion_data):
    # given facts appended through the services (hooks keep the rows), incl. touches and a loss
    response_data(org)
    stall_data(org)
    kept = _rows()
    assert all(kept)
    # when everything is rebuilt from the stage moves and touches
    IndicatorSpan.objects.all().delete()
    indicator_facts_rebuild(chunk=3)
    # then the same rows
    assert _rows() == kept


def test_a_reassigned_lead_counts_for_its_new_owner(org, conversion_data):
    from salesloop.routing.services import lead_reassign

    # when alice's L6 (week 2, not converted) and L5 (converted) go to bob
    for name in ("L5", "L6"):
        lead_reassign(actor=org.carol, lead=conversion_data[name], owner=org.bob, reason="休假交接")
    # then bob: his 1/1 plus 1/2; alice: 0/3 left; the region is unchanged (2/6)
    assert series("conversion", Scope("rep", org.bob.pk)).inputs(WEEK2).numerator == 2
    assert series("conversion", Scope("rep", org.bob.pk)).inputs(WEEK2).denominator == 3
    alice = series("conversion", Scope("rep", org.alice.pk)).inputs(WEEK2)
    assert (alice.numerator, alice.denominator) == (0, 3)
    east = series("conversion", Scope("region", org.east.pk)).inputs(WEEK2)
    assert (east.numerator, east.denominator) == (2, 6)


def test_the_day_ledgers_and_the_lead_rows_give_the_same_inputs(org, conversion_data):
    from salesloop.insights.indicators.compute import from_lead_rows

    response_data(org)
    stall_data(org)
    team = Team.objects.create(name="华东一组", region=org.east)
    org.alice.team = team
    org.alice.save()
    scopes = [
        Scope("org"),
        Scope("region", org.east.pk),
        Scope("region", org.south.pk),
        Scope("team", team.pk),
    ]
    scopes += [Scope("rep", user.pk) for user in (org.alice, org.bob, org.erin)]
    periods = [
        WEEK1,
        WEEK2,
        WEEK3,
        period_of(dt.date(2026, 11, 20), "day"),
        period_of(dt.date(2026, 11, 25), "day"),
    ]
    for indicator in ("conversion", "stall", "response"):
        for scope in scopes:
            for period in periods:
                summed = series(indicator, scope).inputs(period)
                with from_lead_rows():
                    counted = series(indicator, scope).inputs(period)
                assert (summed.numerator, summed.denominator, summed.details) == (
                    counted.numerator,
                    counted.denominator,
                    counted.details,
                ), (indicator, scope, period)
