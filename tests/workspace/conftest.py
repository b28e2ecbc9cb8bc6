"""A set of custom fields, one of each type, defined by the admin through the service."""

from __future__ import annotations

from typing import Any

import pytest

from salesloop.workspace.models import CustomField
from salesloop.workspace.services import custom_field_create

CHOICES = [
    {"value": "a", "label_zh": "甲类", "label_en": "Class A"},
    {"value": "b", "label_zh": "乙类", "label_en": "Class B"},
    {"value": "c", "label_zh": "丙类", "label_en": "Class C"},
]


def field_make(admin: Any, name: str, field_type: str, entity: str = "lead", **extra: Any) -> CustomField:
    return custom_field_create(
        actor=admin,
        entity=entity,
        name=name,
        label_zh=extra.pop("label_zh", f"字段{name}"),
        label_en=extra.pop("label_en", f"Field {name}"),
        field_type=field_type,
        **extra,
    )


@pytest.fixture
def fields(org) -> dict[str, CustomField]:
    admin = org.admin
    return {
        "code": field_make(admin, "code", "text", validation={"max_length": 8, "pattern": r"[A-Z]{2}\d+"}),
        "notes": field_make(admin, "notes", "long_text", label_zh="备注", label_en="Notes"),
        "seats": field_make(
            admin, "seats", "number", label_zh="座席数", label_en="Seats", validation={"min": 1, "max": 10000}
        ),
        "budget": field_make(
            admin, "budget", "money", label_zh="预算", label_en="Budget", validation={"min": 0}
        ),
        "tier": field_make(admin, "tier", "choice", label_zh="客户等级", label_en="Tier", choices=CHOICES),
        "tags": field_make(admin, "tags", "multi_choice", label_zh="标签", label_en="Tags", choices=CHOICES),
        "decision_on": field_make(
            admin, "decision_on", "date", label_zh="决策日期", label_en="Decision date"
        ),
        "site": field_make(admin, "site", "link", label_zh="官网", label_en="Website"),
        "contract": field_make(admin, "contract", "file", label_zh="合同", label_en="Contract"),
        "credit": field_make(
            admin, "credit", "choice", entity="customer", label_zh="信用", label_en="Credit", choices=CHOICES
        ),
    }
