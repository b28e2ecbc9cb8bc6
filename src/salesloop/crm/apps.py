from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "salesloop.crm"
    label = "crm"
    verbose_name = "客户与线索"
