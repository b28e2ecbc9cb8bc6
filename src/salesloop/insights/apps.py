from __future__ import annotations

from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "salesloop.insights"
    label = "insights"
    verbose_name = "Insights"

    def ready(self) -> None:
        from salesloop.insights.indicators import explanations  # noqa: F401  (registers indicator_value)
        from salesloop.insights.receivers import receivers_connect

        receivers_connect()  # keep the funnel rollups and indicator rows in step with the lead facts
