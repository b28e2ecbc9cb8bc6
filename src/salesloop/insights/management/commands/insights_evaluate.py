"""`salesloop insights_evaluate [--date YYYY-MM-DD] [--granularity day|week]`: evaluate the leading
indicators (SPEC C9) for every scope and store them; prints the values that entered warning. For
the latest period (no --date) the warnings go out as alerts (in-app and group robots)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Evaluate the three leading indicators for the day (or the week containing the date; "
        "yesterday by default) for the organisation, every region, team and rep, and store them."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--date", help="a day in the period, YYYY-MM-DD (default: yesterday)")
        parser.add_argument("--granularity", choices=["day", "week"], default="day")

    def handle(self, *args: Any, **options: Any) -> None:
        from salesloop.insights.indicators.services import (
            evaluation_summary,
            indicator_warnings_entered,
            indicators_evaluate,
        )

        day = None
        if options["date"]:
            try:
                day = dt.date.fromisoformat(options["date"])
            except ValueError as exc:
                raise CommandError("--date must be YYYY-MM-DD") from exc
        values = indicators_evaluate(day=day, granularity=options["granularity"])
        summary = evaluation_summary(values)
        if day is None:  # the latest period: its warnings are news; a past --date only fills history
            from salesloop.insights.indicators.alerting import indicator_alerts_apply

            summary["alerts_raised"] = indicator_alerts_apply(values=values)
        self.stdout.write(" ".join(f"{k}={v}" for k, v in summary.items()))
        for value in indicator_warnings_entered(evaluated=values):
            self.stdout.write(f"entered warning: {value.alert_title()}")
