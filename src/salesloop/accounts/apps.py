from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "salesloop.accounts"
    label = "accounts"
    verbose_name = "账户与组织"
