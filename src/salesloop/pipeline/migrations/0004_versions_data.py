"""Every existing pipeline gets version 1, in force, holding its existing stages (SPEC C10.2).

Leads and moves keep pointing at the same stage rows, which now belong to version 1."""

from django.db import migrations


def versions_create(apps, schema_editor):
    Pipeline = apps.get_model("pipeline", "Pipeline")
    PipelineVersion = apps.get_model("pipeline", "PipelineVersion")
    Stage = apps.get_model("pipeline", "Stage")
    for pipeline in Pipeline.objects.order_by("id"):
        version = PipelineVersion.objects.create(
            pipeline=pipeline,
            number=1,
            status="live",
            name=pipeline.name,
            published_at=pipeline.created_at,
        )
        Stage.objects.filter(pipeline=pipeline, version__isnull=True).update(version=version)


def versions_delete(apps, schema_editor):
    """Back to one set of stages per pipeline: only the stages in force can stay."""
    PipelineVersion = apps.get_model("pipeline", "PipelineVersion")
    Stage = apps.get_model("pipeline", "Stage")
    if Stage.objects.filter(pipeline__isnull=True).exclude(version__status="draft").exists():
        raise RuntimeError(
            "retired pipeline versions still hold stages that leads or moves may point at; "
            "this migration cannot be unapplied without losing them"
        )
    Stage.objects.filter(pipeline__isnull=True).delete()  # drafts' stages
    Stage.objects.update(version=None)
    PipelineVersion.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("pipeline", "0003_versions")]
    operations = [migrations.RunPython(versions_create, versions_delete)]
