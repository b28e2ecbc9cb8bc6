"""PostgreSQL: an assignment's trace is kept as `json` (its text, checked) instead of `jsonb`.

Traces are written in bulk (one per routed lead: ~790,000 in a million-row import), read back whole
and never searched inside; `jsonb` parsed each into a binary tree on the way in, ~5% of an import's
time (measured, bench/README.md). The column is rewritten once, keeping its lz4 compression (0003).
SQLite's column is text either way."""


import salesloop.core.models
from django.db import migrations


def lz4_again(apps, schema_editor) -> None:
    """Changing a column's type gives it the default compression again: lz4 as 0003 set it."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        row = cursor.fetchone()
        if row and row[0]:
            cursor.execute("ALTER TABLE routing_assignment ALTER COLUMN explanation SET COMPRESSION lz4")


class Migration(migrations.Migration):

    dependencies = [
        ('routing', '0003_assignment_explanation_lz4'),
    ]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, lz4_again),  # undone: after the type goes back
        migrations.AlterField(
            model_name='assignment',
            name='explanation',
            field=salesloop.core.models.JSONTextField(),
        ),
        migrations.RunPython(lz4_again, migrations.RunPython.noop),
    ]
