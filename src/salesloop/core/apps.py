from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "salesloop.core"
    label = "core"
    verbose_name = "核心"
