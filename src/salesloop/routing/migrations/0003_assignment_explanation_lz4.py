"""PostgreSQL: routing traces compressed with lz4 instead of pglz.

A rule-made assignment's trace (~2 KB of JSON) puts its row over PostgreSQL's 2 KB threshold, so
every trace is compressed as it is stored — with pglz by default, the largest single cost of
routing an import there (~30 s of server time at a million leads; lz4 writes the same rows in
about half the time, measured on the import benchmark's traces). Reading is as fast or faster.
Only new rows are written with lz4; existing ones keep pglz until rewritten. SQLite stores the
text as it is: nothing to do there."""

from django.db import migrations


def _lz4_supported(cursor) -> bool:
    cursor.execute(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    )
    row = cursor.fetchone()
    return bool(row and row[0])


def compression_set(method: str):
    def apply(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            if not _lz4_supported(cursor):  # PostgreSQL < 14, or built without lz4: pglz stays
                return
            cursor.execute(
                f"ALTER TABLE routing_assignment ALTER COLUMN explanation SET COMPRESSION {method}"
            )

    return apply


class Migration(migrations.Migration):
    dependencies = [("routing", "0002_rotation_served_ab_index")]

    operations = [migrations.RunPython(compression_set("lz4"), compression_set("pglz"))]
