"""The default check-in action types (SPEC C4.1); administrators add, relabel or retire them."""

from __future__ import annotations

from django.db import migrations

DEFAULTS = [
    ("visit", "拜访", "Visit"),
    ("call", "电话", "Call"),
    ("demo", "演示", "Demo"),
    ("proposal_sent", "发送方案", "Proposal sent"),
    ("negotiation", "谈判", "Negotiation"),
    ("contract", "签约", "Contract"),
    ("wecom_chat", "企业微信沟通", "WeCom chat"),
    ("other", "其他", "Other"),
]


def add_defaults(apps, schema_editor):
    action_type = apps.get_model("engagement", "CheckinActionType")
    for position, (code, label_zh, label_en) in enumerate(DEFAULTS, 1):
        action_type.objects.get_or_create(
            code=code, defaults={"label_zh": label_zh, "label_en": label_en, "position": position * 10}
        )


def remove_defaults(apps, schema_editor):
    action_type = apps.get_model("engagement", "CheckinActionType")
    checkin = apps.get_model("engagement", "Checkin")
    used = set(checkin.objects.values_list("action_type__code", flat=True))
    action_type.objects.filter(code__in=[c for c, _, _ in DEFAULTS]).exclude(code__in=used).delete()


class Migration(migrations.Migration):
    dependencies = [("engagement", "0003_checkins")]
    operations = [migrations.RunPython(add_defaults, remove_defaults)]
