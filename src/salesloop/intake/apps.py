from django.apps import AppConfig


class IntakeConfig(AppConfig):
    name = "salesloop.intake"
    label = "intake"
    verbose_name = "线索入口"

    def ready(self) -> None:
        from salesloop.intake import explanations  # noqa: F401 -- registers the intake explanation kinds

    def warm_up(self) -> None:
        """Before a web process's first request (core/gunicorn_hooks.py): the table of mobile
        prefixes a delivery's phone is read with (intake/imports/phone_fast.py, ~0.3 s to build)."""
        from salesloop.intake.imports.phone_fast import phone_normalise

        phone_normalise("13800138000")
