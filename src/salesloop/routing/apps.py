from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RoutingConfig(AppConfig):
    name = "salesloop.routing"
    label = "routing"
    verbose_name = "线索分配"

    def ready(self) -> None:
        from salesloop.routing import explanations  # noqa: F401  (registers the assignment kind)

        post_migrate.connect(_loads_kept, sender=self)


def _loads_kept(using: str = "default", plan: list | None = None, **kwargs: object) -> None:
    """After every `migrate`: the loads' triggers are all there (routing/loads.py says why)."""
    from django.db import connections

    from salesloop.routing.loads import loads_kept

    connection = connections[using]
    tables = set(connection.introspection.table_names())
    if {"routing_openleads", "routing_assignedinquarter", "crm_lead"} <= tables:
        loads_kept(connection)
