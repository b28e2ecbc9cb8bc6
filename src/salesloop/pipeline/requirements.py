"""Stage entry requirements (SPEC C2.2): what they may say, and whether a lead meets them.

A stage's `requirements` is a JSON list; each item is one of

    {"type": "field", "field": "<path>"}                       a field must be filled
    {"type": "attachment", "kind": "<slug>", "label_zh": "…", "label_en": "…"}
                                                               an attachment of that kind must exist

Field paths: `title`, `expected_amount` (filled = more than 0), `contact`, `campaign`;
`customer.industry|size|province|city`; `contact.phone|name|title|email`; `custom.<name>` (a lead
custom field) and `customer.custom.<name>` (a customer custom field). A field item may carry
`label_zh`/`label_en` to override the field's own label. Attachments withdrawn (`removed_at`) do not
count. docs/pipelines.md documents the format with examples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from salesloop.core.roles import mask_phone

# path -> (label_zh, label_en)
BUILTIN_FIELDS: dict[str, tuple[str, str]] = {
    "title": ("线索名称", "Lead title"),
    "expected_amount": ("预计金额", "Expected amount"),
    "contact": ("联系人", "Contact"),
    "campaign": ("活动", "Campaign"),
    "customer.industry": ("客户行业", "Customer industry"),
    "customer.size": ("客户规模", "Customer size"),
    "customer.province": ("客户省份", "Customer province"),
    "customer.city": ("客户城市", "Customer city"),
    "contact.phone": ("联系人电话", "Contact phone"),
    "contact.name": ("联系人姓名", "Contact name"),
    "contact.title": ("联系人职务", "Contact title"),
    "contact.email": ("联系人邮箱", "Contact e-mail"),
}
KIND_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_REQUIREMENTS = 30
_LABEL_MAX = 60


def custom_field_labels() -> dict[str, tuple[str, str]]:
    """Custom field paths in force (not archived) -> labels, one query."""
    from salesloop.workspace.models import CustomField

    paths: dict[str, tuple[str, str]] = {}
    for definition in CustomField.objects.filter(archived=False).only(
        "entity", "name", "label_zh", "label_en"
    ):
        prefix = "custom." if definition.entity == "lead" else "customer.custom."
        paths[prefix + definition.name] = (definition.label_zh, definition.label_en or definition.label_zh)
    return paths


def requirements_validate(
    value: Any, *, path: str, first_stage: bool, custom: dict[str, tuple[str, str]] | None = None
) -> list[dict[str, str]]:
    """The requirements in their stored form, or ValidationError naming each bad item by its path,
    e.g. `stages[2].requirements[1].field`."""
    custom = custom_field_labels() if custom is None else custom
    errors: dict[str, str] = {}
    if not isinstance(value, list):
        raise ValidationError({path: "a list of requirements"})
    if first_stage and value:
        raise ValidationError(
            {
                path: "the first stage cannot have requirements: "
                "every new lead enters it (intake, imports, API)"
            }
        )
    if len(value) > MAX_REQUIREMENTS:
        raise ValidationError({path: f"at most {MAX_REQUIREMENTS} requirements"})
    clean: list[dict[str, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        at = f"{path}[{i}]"
        if not isinstance(item, dict):
            errors[at] = 'an object like {"type": "field", "field": "expected_amount"}'
            continue
        kind = item.get("type")
        allowed = {"type", "label_zh", "label_en"} | ({"field"} if kind == "field" else {"kind"})
        for extra in sorted(set(item) - allowed):
            errors[f"{at}.{extra}"] = "unknown key"
        out: dict[str, str] = {"type": str(kind)}
        if kind == "field":
            name = item.get("field")
            if not isinstance(name, str) or not name:
                errors[f"{at}.field"] = "a field path, e.g. expected_amount or custom.budget_owner"
                continue
            if name not in BUILTIN_FIELDS and name not in custom:
                hint = (
                    "no such custom field (or it is archived)"
                    if name.startswith(("custom.", "customer.custom."))
                    else "unknown field; one of " + ", ".join(BUILTIN_FIELDS) + ", custom.<name>, "
                    "customer.custom.<name>"
                )
                errors[f"{at}.field"] = hint
                continue
            out["field"] = name
            key = f"field:{name}"
        elif kind == "attachment":
            slug = item.get("kind")
            if not isinstance(slug, str) or not KIND_RE.match(slug):
                errors[f"{at}.kind"] = (
                    "an attachment kind: lower-case letters, digits, _ or -, e.g. pain_points"
                )
                continue
            out["kind"] = slug
            key = f"attachment:{slug}"
        else:
            errors[f"{at}.type"] = "field or attachment"
            continue
        for label in ("label_zh", "label_en"):
            text = item.get(label, "")
            if not isinstance(text, str) or len(text.strip()) > _LABEL_MAX or "\x00" in text:
                errors[f"{at}.{label}"] = f"text of at most {_LABEL_MAX} characters"
            elif text.strip():
                out[label] = text.strip()
        if kind == "attachment" and "label_zh" not in out and f"{at}.label_zh" not in errors:
            errors[f"{at}.label_zh"] = "name the attachment in Chinese, e.g. 痛点清单"
        if key in seen:
            errors[at] = "listed twice"
        seen.add(key)
        clean.append(out)
    if errors:
        raise ValidationError(errors)
    return clean


def requirement_labels(item: dict[str, str], custom: dict[str, tuple[str, str]]) -> tuple[str, str]:
    if item["type"] == "attachment":
        zh = item.get("label_zh") or item["kind"]
        return zh, item.get("label_en") or item["kind"]
    known = BUILTIN_FIELDS.get(item["field"]) or custom.get(item["field"]) or (item["field"], item["field"])
    return item.get("label_zh") or known[0], item.get("label_en") or known[1]


@dataclass
class LeadFacts:
    """What the requirements read of a lead: the lead with customer and contact, and its attachments."""

    lead: Any
    attachments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    custom: dict[str, tuple[str, str]] = field(default_factory=dict)


def lead_facts(lead: Any, stages: list[Any]) -> LeadFacts:
    """What the stages' requirements read beyond the lead row: its attachments in force (one query,
    only when an attachment is required) and custom field labels (one, only when one is named)."""
    from salesloop.crm.models import Attachment

    items = [item for stage in stages for item in stage.requirements or []]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    if any(item.get("type") == "attachment" for item in items):
        kinds = {item.get("kind") for item in items}
        attachments = Attachment.objects.filter(lead_id=lead.pk, kind__in=kinds, removed_at__isnull=True)
        for attachment in attachments.order_by("id"):
            by_kind.setdefault(attachment.kind, []).append(
                {"id": attachment.pk, "title": attachment.title, "url": attachment.url or ""}
            )
    named_custom = any(
        str(item.get("field", "")).startswith(("custom.", "customer.custom.")) for item in items
    )
    return LeadFacts(lead=lead, attachments=by_kind, custom=custom_field_labels() if named_custom else {})


def _field_value(lead: Any, path: str) -> Any:
    customer, contact = lead.customer, lead.contact
    if path.startswith("customer.custom."):
        return (customer.custom_fields or {}).get(path.removeprefix("customer.custom."))
    if path.startswith("custom."):
        return (lead.custom_fields or {}).get(path.removeprefix("custom."))
    if path == "expected_amount":
        return lead.expected_amount if lead.expected_amount and lead.expected_amount > 0 else None
    if path == "contact":
        return contact.name if contact else None
    if path == "customer.province":
        return customer.province.name if customer.province_id else None
    if path.startswith("customer."):
        return getattr(customer, path.removeprefix("customer."))
    if path.startswith("contact."):
        if contact is None:
            return None
        value = getattr(contact, path.removeprefix("contact."))
        if path == "contact.phone" and value:
            return mask_phone(value)  # the fact that it was filled, not the number itself
        if path == "contact.email" and value:
            return value[0] + "***@" + value.partition("@")[2]
        return value
    return getattr(lead, path)


def _filled(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str | list | dict):
        return bool(value.strip() if isinstance(value, str) else value)
    return True


@dataclass(frozen=True)
class ItemState:
    stage_code: str
    item: dict[str, str]
    label_zh: str
    label_en: str
    met: bool
    value: Any  # the value, or the attachments, that met it

    @property
    def key(self) -> str:
        return self.item.get("field") or f"attachment.{self.item['kind']}"

    def label(self, language: str) -> str:
        return self.label_en if language.startswith("en") else self.label_zh


def requirements_check(stages: list[Any], facts: LeadFacts) -> list[ItemState]:
    """Each requirement of the given stages, met or not, in stage order."""
    from salesloop.core.audit import jsonable

    states = []
    for stage in stages:
        for item in stage.requirements or []:
            zh, en = requirement_labels(item, facts.custom)
            if item.get("type") == "attachment":
                found = facts.attachments.get(item.get("kind", ""), [])
                states.append(ItemState(stage.code, item, zh, en, bool(found), found))
            elif item.get("type") == "field":
                value = _field_value(facts.lead, item.get("field", ""))
                states.append(ItemState(stage.code, item, zh, en, _filled(value), jsonable(value)))
    return states


def missing_problems(states: list[ItemState]) -> list[dict[str, str]]:
    """Every unmet requirement as a problem of the `stage_move_refused` explanation."""
    problems = []
    for state in states:
        if state.met:
            continue
        is_field = state.item["type"] == "field"
        what = f"field {state.key}" if is_field else f"an attachment of kind {state.item['kind']!r}"
        problems.append(
            {
                "code": "missing_field" if is_field else "missing_attachment",
                "field": state.key,
                "stage": state.stage_code,
                "label_zh": state.label_zh,
                "label_en": state.label_en,
                "message": f"entering {state.stage_code!r} needs {state.label_en} ({what})",
            }
        )
    return problems


def filled_record(states: list[ItemState]) -> dict[str, Any]:
    """What satisfied the requirements at the time of the move (StageMove.filled)."""
    if not states:
        return {}
    return {
        "items": [
            {
                "stage": state.stage_code,
                "type": state.item["type"],
                "key": state.key,
                "label_zh": state.label_zh,
                "label_en": state.label_en,
                "value": state.value,
            }
            for state in states
        ]
    }
