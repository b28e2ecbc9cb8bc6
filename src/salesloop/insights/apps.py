from __future__ import annotations

from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "salesloop.insights"
    label = "insights"
    verbose_name = "Insights"

    def ready(self) -> None:
        from salesloop.insights.indicators import explanations  # noqa: F401  (registers indicator_value)
