from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "salesloop.health"
    label = "health"
    verbose_name = "Health"

    def ready(self) -> None:
        from salesloop.health import explanations  # noqa: F401  (registers the health_score kind)
