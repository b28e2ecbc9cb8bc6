from django.apps import AppConfig


class EngagementConfig(AppConfig):
    name = "salesloop.engagement"
    label = "engagement"
    verbose_name = "Engagement"

    def ready(self) -> None:
        from salesloop.engagement import checkin_admin  # noqa: F401  (registers the C4 admin pages)
        from salesloop.engagement.ocr import explanations  # noqa: F401 -- registers the OCR explanation kinds
