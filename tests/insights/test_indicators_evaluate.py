"""Evaluating and storing the indicators (SPEC C9): idempotent, one entry into warning flagged once
(not while it stays in warning; again after a recovery), everything an alert needs on the value."""

from __future__ import annotations

import datetime as dt
from io import StringIO

from django.core.management import call_command

from salesloop.core import clock
from salesloop.core.models import AuditEntry
from salesloop.insights.indicators.compute import Scope
from salesloop.insights.indicators.services import indicator_warnings_entered, indicators_evaluate
from salesloop.insights.indicators.tasks import indicators_evaluate_daily
from salesloop.insights.models.indicators import IndicatorValue
from tests.insights.indicator_helpers import arrive, local, move, thresholds_for_tests

MONDAYS = [dt.date(2026, 10, 5) + dt.timedelta(weeks=n) for n in range(7)]


def weeks_of_alice(org, good: list[bool]) -> None:
    """Each week two of alice's leads arrive; in a good week one reaches 需求确认 that week (50 %),
    in a bad week none does (0 %)."""
    for monday, is_good in zip(MONDAYS, good, strict=True):
        first = arrive(org.alice, local(monday.isoformat(), 10))
        arrive(org.alice, local((monday + dt.timedelta(days=1)).isoformat(), 10))
        if is_good:
            move(
                first,
                "needs_confirmed",
                local((monday + dt.timedelta(days=2)).isoformat(), 10),
                actor=org.admin,
            )


def evaluate_week(org, monday: dt.date) -> IndicatorValue:
    clock.set_now(local((monday + dt.timedelta(days=8)).isoformat(), 1))
    values = indicators_evaluate(
        day=monday, granularity="week", scopes=[Scope("rep", org.alice.pk, "Alice 王")]
    )
    return next(v for v in values if v.indicator == "conversion")


def test_entering_warning_is_flagged_once_per_entry(org):
    # given weeks: good, bad, bad, bad, good, bad, bad
    thresholds_for_tests(org.admin)
    weeks_of_alice(org, [True, False, False, False, True, False, False])
    # when each week is evaluated after it ends
    values = [evaluate_week(org, monday) for monday in MONDAYS]
    # then: healthy, watch (first bad week), warning (entered), warning (stays: no new alert),
    # healthy, watch, warning (entered again after the recovery)
    assert [v.status for v in values] == [
        "healthy",
        "watch",
        "warning",
        "warning",
        "healthy",
        "watch",
        "warning",
    ]
    assert [v.entered_warning for v in values] == [False, False, True, False, False, False, True]
    assert indicator_warnings_entered(evaluated=values) == [values[2], values[6]]


def test_evaluating_a_period_again_gives_the_same_rows(org):
    thresholds_for_tests(org.admin)
    weeks_of_alice(org, [True, False, False, False, True, False, False])
    first = evaluate_week(org, MONDAYS[2])
    rows = list(
        IndicatorValue.objects.values_list(
            "indicator", "scope_kind", "scope_id", "value", "status", "entered_warning"
        )
    )
    again = evaluate_week(org, MONDAYS[2])
    assert IndicatorValue.objects.count() == 3  # one per indicator, not six
    assert again.pk == first.pk
    assert (
        list(
            IndicatorValue.objects.values_list(
                "indicator", "scope_kind", "scope_id", "value", "status", "entered_warning"
            )
        )
        == rows
    )


def test_a_value_carries_everything_an_alert_needs(org):
    thresholds_for_tests(org.admin)
    weeks_of_alice(org, [True, False, False, False, True, False, False])
    value = evaluate_week(org, MONDAYS[2])
    assert value.entered_warning
    # the inputs, the rule, the thresholds version, and the leads behind it
    assert (value.numerator, value.denominator, value.value) == (0, 2, 0.0)
    assert value.explanation["kind"] == "indicator_value"
    assert value.explanation["rule"] == "conversion_warning"
    assert value.explanation["thresholds"]["version"] == value.thresholds_version == 1
    assert value.explanation["previous_status"] == "watch"
    assert value.drill_link.startswith(
        "/insights/indicators/leads/?indicator=conversion&granularity=week&period=2026-10-19"
    )
    assert f"scope=rep%3A{org.alice.pk}" in value.drill_link
    assert value.suggested_response == "channel_quality_review"
    # in Chinese, with the inputs and the suggested response
    assert value.alert_title() == "Alice 王：线索-商机转化率进入预警（0.0%）"
    body = value.alert_body()
    assert "2 条线索中 0 条进入需求确认" in body and "获客渠道质量复盘会" in body


def test_the_command_evaluates_every_scope_and_names_the_entries(org):
    thresholds_for_tests(org.admin)
    weeks_of_alice(org, [True, False, False, False, True, False, False])
    clock.set_now(local("2026-10-27", 1))
    out = StringIO()
    call_command("insights_evaluate", "--date", "2026-10-19", "--granularity", "week", stdout=out)
    # org + 2 regions + 3 reps (alice, bob, erin), 3 indicators each
    assert IndicatorValue.objects.filter(period_start=dt.date(2026, 10, 19)).count() == 6 * 3
    assert "Alice 王：线索-商机转化率进入预警" in out.getvalue()


def test_the_daily_task_evaluates_yesterday(org):
    thresholds_for_tests(org.admin)
    clock.set_now(local("2026-11-25", 3))  # a Wednesday: no weekly run
    result = indicators_evaluate_daily.enqueue().return_value
    assert result["values"] == 6 * 3
    assert set(IndicatorValue.objects.values_list("granularity", "period_start")) == {
        ("day", dt.date(2026, 11, 24))
    }


def test_thresholds_versions_are_audited(org):
    row = thresholds_for_tests(org.admin, conversion_healthy="0.40")
    entry = AuditEntry.objects.get(action="insights.thresholds_create")
    assert entry.before["conversion_healthy"] == "0.38" and entry.after["conversion_healthy"] == "0.4000"
    assert entry.actor == org.admin and entry.target_id == str(row.pk)


def test_each_entry_into_warning_raises_one_alert_to_the_rep_and_her_manager(org):
    from salesloop.insights.indicators.alerting import alert_key, indicator_alerts_apply
    from salesloop.notify.models import Alert, Notification

    # given weeks: good, bad, bad, bad, good, bad, bad (warning entered in weeks 3 and 7)
    thresholds_for_tests(org.admin)
    weeks_of_alice(org, [True, False, False, False, True, False, False])
    raised = []
    # when each week's evaluation is followed by its alerts
    for monday in MONDAYS:
        value = evaluate_week(org, monday)
        raised.append(indicator_alerts_apply(values=[value]))

    # then one alert per entry, cleared in between; alice and carol (华东's manager) hear, dave not
    assert raised == [0, 0, 1, 0, 0, 0, 1]
    alerts = list(Alert.objects.filter(key=alert_key(value)).order_by("raised_at"))
    assert len(alerts) == 2 and alerts[0].cleared_at is not None and alerts[1].cleared_at is None
    assert alerts[1].kind == "indicator.conversion" and alerts[1].link == value.drill_link
    assert alerts[1].region_id == org.east.pk
    assert alerts[1].suggested_response
    for alert in alerts:  # each entry's drill-down names its own week
        told = sorted(Notification.objects.filter(link=alert.link).values_list("user__username", flat=True))
        assert told == ["alice", "carol"]
