from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "salesloop.routing"
    label = "routing"
    verbose_name = "线索分配"

    def ready(self) -> None:
        from salesloop.routing import explanations  # noqa: F401  (registers the assignment kind)
