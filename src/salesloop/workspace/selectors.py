"""Reads of custom field definitions (SPEC C10.1). Definitions are organisation-wide configuration:
anyone signed in may read them (forms, filters and exports need them); only admins change them."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from salesloop.workspace.models import CustomField, CustomFieldEntity


def _check_entity(entity: str) -> None:
    if entity not in CustomFieldEntity.values:
        raise ValueError(f"entity is one of {', '.join(CustomFieldEntity.values)}, not {entity!r}")


def custom_fields_all(*, entity: str) -> list[CustomField]:
    """Every definition of the entity, archived ones too (their values are kept and shown), in the
    order forms show them."""
    _check_entity(entity)
    return list(CustomField.objects.filter(entity=entity).order_by("position", "id"))


def custom_fields_active(*, entity: str) -> list[CustomField]:
    """The definitions people fill in now (not archived), in form order. Stage requirements read
    these to check required custom fields."""
    return [field for field in custom_fields_all(entity=entity) if not field.archived]


def custom_fields_by_entity() -> dict[str, list[CustomField]]:
    """Lead and customer definitions (archived included) in one query."""
    fields: dict[str, list[CustomField]] = {entity: [] for entity in CustomFieldEntity.values}
    for field in CustomField.objects.order_by("position", "id"):
        fields[field.entity].append(field)
    return fields


def custom_field_get(*, field_id: int) -> CustomField:
    from django.http import Http404

    field = CustomField.objects.filter(pk=field_id).first()
    if field is None:
        raise Http404("custom field not found")
    return field


def custom_field_label(field: CustomField, language: str | None) -> str:
    """The label in the reader's language: English when asked for and given, else Chinese."""
    return field.label((language or "zh-hans").lower())


def choice_label(field: CustomField, value: Any, language: str | None) -> str:
    english = (language or "").lower().startswith("en")
    for choice in field.choices or []:
        if choice.get("value") == value:
            label = choice.get("label_en") if english and choice.get("label_en") else choice.get("label_zh")
            return str(label or value)
    return str(value)


def custom_value_display(field: CustomField, value: Any, language: str | None) -> str:
    """A stored value as a person reads it (choice labels, money with 2 places); files by id —
    the callers that show files fetch the attachments in bulk."""
    if value is None or value == "" or value == []:
        return ""
    if field.field_type == "choice":
        return choice_label(field, value, language)
    if field.field_type == "multi_choice" and isinstance(value, list):
        return "; ".join(choice_label(field, v, language) for v in value)
    return str(value)


def records_with_value(field: CustomField) -> QuerySet[Any]:
    """The leads or customers that hold a value for this field (any value, even an archived one)."""
    from salesloop.crm.models import Customer, Lead

    model = Lead if field.entity == CustomFieldEntity.LEAD else Customer
    return model.objects.filter(custom_fields__has_key=field.name)
