"""The default pipeline's entry requirements (SPEC C2.2; reasoning in docs/pipelines.md).

They are written into version 1 itself rather than published as version 2: they are part of what
the product ships, set before any user could have edited the pipeline."""

from django.db import migrations

DEFAULT_REQUIREMENTS = {
    "screening": [],
    "needs_confirmed": [
        {"type": "field", "field": "contact.phone"},
        {"type": "field", "field": "customer.industry"},
    ],
    "solution_demo": [
        {"type": "attachment", "kind": "pain_points", "label_zh": "痛点清单", "label_en": "Pain-point list"},
        {"type": "attachment", "kind": "deck_link", "label_zh": "定制方案链接", "label_en": "Tailored deck link"},
    ],
    "quote_negotiation": [
        {"type": "field", "field": "expected_amount"},
        {"type": "attachment", "kind": "proposal", "label_zh": "报价方案", "label_en": "Quote / proposal"},
    ],
    "contract_signed": [
        {"type": "attachment", "kind": "contract", "label_zh": "合同", "label_en": "Signed contract"},
    ],
}


def requirements_set(apps, schema_editor):
    Stage = apps.get_model("pipeline", "Stage")
    for stage in Stage.objects.filter(version__pipeline__code="default", version__number=1):
        if stage.code in DEFAULT_REQUIREMENTS and not stage.requirements:
            stage.requirements = DEFAULT_REQUIREMENTS[stage.code]
            stage.save(update_fields=["requirements"])


def requirements_clear(apps, schema_editor):
    Stage = apps.get_model("pipeline", "Stage")
    for stage in Stage.objects.filter(version__pipeline__code="default", version__number=1):
        if stage.requirements == DEFAULT_REQUIREMENTS.get(stage.code):
            stage.requirements = []
            stage.save(update_fields=["requirements"])


class Migration(migrations.Migration):
    dependencies = [("pipeline", "0005_stage_version_required")]
    operations = [migrations.RunPython(requirements_set, requirements_clear)]
