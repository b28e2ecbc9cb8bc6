"""Background work of the leading indicators (django-tasks): the daily evaluation (SPEC C9). Run it
once a day after midnight (Asia/Shanghai), e.g. cron running `salesloop insights_evaluate` or
enqueueing this task: yesterday's daily values, and on Mondays last week's weekly values."""

from __future__ import annotations

from django_tasks import task

from salesloop.core import clock
from salesloop.insights.indicators.alerting import indicator_alerts_apply
from salesloop.insights.indicators.services import evaluation_summary, indicators_evaluate


@task()
def indicators_evaluate_daily() -> dict[str, int]:
    values = indicators_evaluate(granularity="day")
    if clock.today_local().weekday() == 0:  # Monday: last week is complete
        values += indicators_evaluate(granularity="week")
    summary = evaluation_summary(values)
    summary["alerts_raised"] = indicator_alerts_apply(values=values)
    return summary
