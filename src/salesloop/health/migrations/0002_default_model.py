"""The default scoring configuration, version 1, in force from the start (docs/health.md)."""

import datetime as dt

from django.db import migrations

WEIGHTS = {
    "contact_frequency": 20,
    "material_viewing": 15,
    "meeting_attendance": 20,
    "budget_progress": 20,
    "response_rate": 15,
    "customer_initiated": 10,
}
WINDOWS = {
    "contact_frequency": 30,
    "material_viewing": 30,
    "meeting_attendance": 90,
    "budget_progress": 180,
    "response_rate": 60,
    "customer_initiated": 60,
}
TARGETS = {
    "contact_frequency": 8.0,
    "material_viewing": 600.0,
    "meeting_attendance": 2.0,
    "budget_progress": 1.0,
    "response_rate": 4.0,
    "customer_initiated": 3.0,
}
START = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def create(apps, schema_editor):
    HealthModel = apps.get_model("health", "HealthModel")
    HealthModel.objects.get_or_create(
        version=1,
        defaults={
            "status": "published",
            "weights": WEIGHTS,
            "windows": WINDOWS,
            "targets": TARGETS,
            "half_life_days": 14,
            "red_threshold": 40,
            "note": "默认配置 Default configuration (docs/health.md)",
            "created_at": START,
            "effective_at": START,
            "published_at": START,
        },
    )


def remove(apps, schema_editor):
    apps.get_model("health", "HealthModel").objects.filter(version=1, created_by__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("health", "0001_initial")]

    operations = [migrations.RunPython(create, remove)]
