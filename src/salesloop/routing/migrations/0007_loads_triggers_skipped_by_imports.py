"""Routing's loads' triggers fire as PostgreSQL creates triggers — not for a session in replica mode:
an import's own inserts skip them with the foreign keys' triggers and add the counts themselves
(`routing.loads.loads_add`). Nothing changes on SQLite."""

from django.db import migrations


def ordinary(apps, schema_editor):
    from salesloop.routing.loads import triggers_in_replica_mode

    triggers_in_replica_mode(schema_editor.connection, fire=False)


def always(apps, schema_editor):
    from salesloop.routing.loads import triggers_in_replica_mode

    triggers_in_replica_mode(schema_editor.connection, fire=True)


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0006_loads_kept"),
    ]

    operations = [
        migrations.RunPython(ordinary, always),
    ]
