from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "salesloop.health"
    label = "health"
    verbose_name = "Health"
