from django.apps import AppConfig


class EngagementConfig(AppConfig):
    name = "salesloop.engagement"
    label = "engagement"
    verbose_name = "Engagement"

    def ready(self) -> None:
        from salesloop.engagement.ocr import explanations  # noqa: F401 -- registers the OCR explanation kinds
