from django.db import migrations

# SPEC C2.1: the five stages of the default pipeline.
DEFAULT_STAGES = [
    ("screening", "初筛", "Screening"),
    ("needs_confirmed", "需求确认", "Needs confirmed"),
    ("solution_demo", "方案演示", "Solution demo"),
    ("quote_negotiation", "报价谈判", "Quote negotiation"),
    ("contract_signed", "合同签署", "Contract signed"),
]


def default_pipeline_create(apps, schema_editor):
    Pipeline = apps.get_model("pipeline", "Pipeline")
    Stage = apps.get_model("pipeline", "Stage")
    if Pipeline.objects.filter(code="default").exists():
        return
    pipeline = Pipeline.objects.create(code="default", name="标准销售流程", is_default=True)
    Stage.objects.bulk_create(
        [Stage(pipeline=pipeline, code=code, name=name, name_en=name_en, position=i)
         for i, (code, name, name_en) in enumerate(DEFAULT_STAGES, start=1)]
    )


def default_pipeline_delete(apps, schema_editor):
    apps.get_model("pipeline", "Pipeline").objects.filter(code="default").delete()


class Migration(migrations.Migration):
    dependencies = [("pipeline", "0001_initial")]
    operations = [migrations.RunPython(default_pipeline_create, default_pipeline_delete)]
