from django.apps import AppConfig


class IntakeConfig(AppConfig):
    name = "salesloop.intake"
    label = "intake"
    verbose_name = "线索入口"

    def ready(self) -> None:
        from salesloop.intake import explanations  # noqa: F401 -- registers the intake explanation kinds
