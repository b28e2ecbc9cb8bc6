from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "salesloop.notify"
    label = "notify"
    verbose_name = "通知"
