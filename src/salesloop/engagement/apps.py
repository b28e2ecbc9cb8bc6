from django.apps import AppConfig


class EngagementConfig(AppConfig):
    name = "salesloop.engagement"
    label = "engagement"
    verbose_name = "Engagement"
