"""Custom field writes (SPEC C10.1): define, change and archive the organisation's own fields, and
validate values against them. Definitions are configuration: only administrators change them, every
change is audited with the state before and after, and nothing needs a restart."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max

from salesloop.core.audit import audit_record, snapshot
from salesloop.core.roles import is_admin
from salesloop.workspace import values as field_values
from salesloop.workspace.models import CustomField, CustomFieldEntity, CustomFieldType
from salesloop.workspace.selectors import custom_fields_all, records_with_value

T = CustomFieldType
FIELD_STATE = (
    "entity",
    "name",
    "label_zh",
    "label_en",
    "field_type",
    "choices",
    "validation",
    "help_text",
    "position",
    "archived",
)
# An attachment's kind is `custom-<name>` (40 characters at most), and names travel in URLs
# (`cf.<name>.min`): lowercase letters, digits and underscores, 32 at most.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")
CHOICE_VALUE_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
CHANGEABLE = ("label_zh", "label_en", "field_type", "choices", "validation", "help_text", "position")
# Which validation keys apply to which type.
RULES: dict[str, frozenset[str]] = {
    T.TEXT: frozenset({"required", "max_length", "pattern"}),
    T.LONG_TEXT: frozenset({"required", "max_length"}),
    T.NUMBER: frozenset({"required", "min", "max"}),
    T.MONEY: frozenset({"required", "min", "max"}),
    T.DATE: frozenset({"required", "min", "max"}),
    T.CHOICE: frozenset({"required"}),
    T.MULTI_CHOICE: frozenset({"required"}),
    T.LINK: frozenset({"required"}),
    T.FILE: frozenset({"required"}),
}
MAX_CHOICES = 200


def custom_values_clean(
    *, entity: str, values: Mapping[str, Any] | None, partial: bool, record: Any = None
) -> dict[str, Any]:
    """C10.1: `values` (field name → value) validated and normalised against the entity's fields.

    Unknown names and bad values raise ValidationError keyed `custom_fields.<name>`; archived fields
    are read-only. `record` (the lead or customer being changed) lets file fields check that the
    attachment belongs to it. See `workspace.values.values_clean` for `partial`."""
    return field_values.values_clean(custom_fields_all(entity=entity), values, partial=partial, record=record)


def _check_admin(actor: Any) -> None:
    if actor is None or not is_admin(actor):
        raise PermissionDenied("only administrators define custom fields")


def _label(value: Any, key: str, *, required: bool) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if value is not None and not isinstance(value, str):
        raise ValidationError({key: "must be text"})
    if required and not text:
        raise ValidationError({key: "required"})
    if len(text) > 60:
        raise ValidationError({key: "at most 60 characters"})
    return text


def _choices_clean(field_type: str, choices: Any) -> list[dict[str, str]]:
    if field_type not in (T.CHOICE, T.MULTI_CHOICE):
        if choices:
            raise ValidationError({"choices": "only choice and multi-choice fields have choices"})
        return []
    if not isinstance(choices, list) or not choices:
        raise ValidationError({"choices": "give at least one choice"})
    if len(choices) > MAX_CHOICES:
        raise ValidationError({"choices": f"at most {MAX_CHOICES} choices"})
    cleaned: list[dict[str, str]] = []
    seen: set[str] = set()
    for index, choice in enumerate(choices, 1):
        if not isinstance(choice, Mapping):
            raise ValidationError({"choices": f"choice {index}: an object with value, label_zh, label_en"})
        value = choice.get("value")
        if not isinstance(value, str) or not CHOICE_VALUE_PATTERN.fullmatch(value):
            raise ValidationError(
                {"choices": f"choice {index}: value is lowercase letters, digits, - or _ (at most 40)"}
            )
        if value in seen:
            raise ValidationError({"choices": f"choice {index}: value {value!r} appears twice"})
        seen.add(value)
        cleaned.append(
            {
                "value": value,
                "label_zh": _label(choice.get("label_zh") or value, "choices", required=True),
                "label_en": _label(choice.get("label_en") or "", "choices", required=False),
            }
        )
    return cleaned


def _bound(field_type: str, value: Any) -> Any:
    """A min or max in the field's own terms (a date for dates, a number otherwise)."""
    probe = CustomField(name="bound", field_type=field_type, validation={})
    try:
        return field_values.value_clean(probe, value)
    except field_values.ValueRefused as exc:
        raise ValidationError({"validation": f"min/max: {exc}"}) from exc


def _validation_clean(field_type: str, validation: Any) -> dict[str, Any]:
    if validation is None:
        return {}
    if not isinstance(validation, Mapping):
        raise ValidationError({"validation": 'an object such as {"required": true, "max": 100}'})
    allowed = RULES[field_type]
    unknown = sorted(set(validation) - allowed)
    if unknown:
        raise ValidationError(
            {"validation": f"{unknown[0]} does not apply to this type; use {', '.join(sorted(allowed))}"}
        )
    cleaned: dict[str, Any] = {}
    if "required" in validation:
        if not isinstance(validation["required"], bool):
            raise ValidationError({"validation": "required is true or false"})
        cleaned["required"] = validation["required"]
    if validation.get("max_length") not in (None, ""):
        limit, most = validation["max_length"], field_values.TEXT_LIMIT[field_type]
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= most:
            raise ValidationError({"validation": f"max_length is a whole number from 1 to {most}"})
        cleaned["max_length"] = limit
    if validation.get("pattern") not in (None, ""):
        pattern = validation["pattern"]
        if not isinstance(pattern, str) or len(pattern) > 200 or "\x00" in pattern:
            raise ValidationError({"validation": "pattern is a regular expression of at most 200 characters"})
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValidationError({"validation": f"pattern is not a regular expression: {exc}"}) from exc
        cleaned["pattern"] = pattern
    for key in ("min", "max"):
        if validation.get(key) not in (None, ""):
            cleaned[key] = _bound(field_type, validation[key])
    if "min" in cleaned and "max" in cleaned:
        low, high = cleaned["min"], cleaned["max"]
        if field_type == T.MONEY:
            low, high = field_values._decimal(low), field_values._decimal(high)
        if low > high:
            raise ValidationError({"validation": "min is greater than max"})
    return cleaned


def _definition_clean(field: CustomField) -> None:
    if field.field_type not in T.values:
        raise ValidationError({"field_type": f"one of {', '.join(T.values)}"})
    field.label_zh = _label(field.label_zh, "label_zh", required=True)
    field.label_en = _label(field.label_en, "label_en", required=False)
    if not isinstance(field.help_text, str) or len(field.help_text) > 200:
        raise ValidationError({"help_text": "at most 200 characters"})
    field.help_text = field.help_text.strip()
    field.choices = _choices_clean(field.field_type, field.choices)
    field.validation = _validation_clean(field.field_type, field.validation)
    if (
        isinstance(field.position, bool)
        or not isinstance(field.position, int)
        or not 0 <= field.position < 32768
    ):
        raise ValidationError({"position": "a whole number from 0 to 32767"})


@transaction.atomic
def custom_field_create(
    *,
    actor: Any,
    entity: str,
    name: str,
    label_zh: str,
    field_type: str,
    label_en: str = "",
    choices: list[dict[str, Any]] | None = None,
    validation: dict[str, Any] | None = None,
    help_text: str = "",
    position: int | None = None,
) -> CustomField:
    """C10.1: a new field on leads or customers. `name` is its key in `custom_fields`, in the API
    and in filters: unique per entity (archived fields keep theirs) and never changed."""
    _check_admin(actor)
    if entity not in CustomFieldEntity.values:
        raise ValidationError({"entity": f"one of {', '.join(CustomFieldEntity.values)}"})
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValidationError(
            {"name": "starts with a lowercase letter; lowercase letters, digits and _ (at most 32)"}
        )
    if position is None:
        last = CustomField.objects.filter(entity=entity).aggregate(last=Max("position"))["last"]
        position = min((last or 0) + 10, 32767)
    field = CustomField(
        entity=entity,
        name=name,
        label_zh=label_zh,
        label_en=label_en,
        field_type=field_type,
        choices=choices or [],
        validation=validation or {},
        help_text=help_text,
        position=position,
    )
    _definition_clean(field)
    if CustomField.objects.filter(entity=entity, name=name).exists():
        raise ValidationError({"name": f"a {entity} field named {name!r} already exists (maybe archived)"})
    try:
        with transaction.atomic():
            field.save()
    except IntegrityError as exc:  # a concurrent create of the same name
        raise ValidationError({"name": f"a {entity} field named {name!r} already exists"}) from exc
    audit_record(actor=actor, action="custom_field.create", target=field, after=snapshot(field, FIELD_STATE))
    return field


def _values_still_fit(field: CustomField, changed: str, old_type: str) -> None:
    """Refuse a change of type, choices or rules that existing values would not survive; the
    message names how many records and the first few, so the admin can fix them first."""
    records = records_with_value(field)
    if field.field_type == T.FILE:
        if old_type != T.FILE and records.exists():
            raise ValidationError({changed: "records hold values of another type; a file field starts empty"})
        return
    probe = CustomField(**{name: getattr(field, name) for name in FIELD_STATE})
    probe.validation = {k: v for k, v in field.validation.items() if k != "required"}
    misfits: list[str] = []
    count = 0
    rows = records.values_list("pk", "custom_fields").order_by("pk").iterator(chunk_size=2000)
    for pk, stored in rows:
        value = (stored or {}).get(field.name)
        if field_values.is_empty(value):
            continue
        try:
            if field_values.value_clean(probe, value) != value:
                raise field_values.ValueRefused("kept in another form; it would need converting")
        except field_values.ValueRefused as exc:
            count += 1
            if len(misfits) < 3:
                misfits.append(f"#{pk} ({str(value)[:30]!r}: {exc})")
    if count:
        raise ValidationError(
            {changed: f"{count} existing value(s) would no longer be valid, e.g. {', '.join(misfits)}"}
        )


@transaction.atomic
def custom_field_update(*, actor: Any, field: CustomField, **changes: Any) -> CustomField:
    """C10.1: change labels, help, order, type, choices or validation. `name` and `entity` never
    change; a change existing values would not fit is refused (see `_values_still_fit`)."""
    _check_admin(actor)
    field = CustomField.objects.select_for_update().get(pk=field.pk)
    before = snapshot(field, FIELD_STATE)
    for key, value in changes.items():
        if key in ("name", "entity"):
            if value != getattr(field, key):
                raise ValidationError({key: "cannot be changed once the field exists"})
            continue
        if key not in CHANGEABLE:
            raise ValidationError({key: "cannot be changed here"})
        setattr(field, key, value if value is not None or key in ("choices", "validation") else "")
    if field.archived and any(k in changes for k in ("field_type", "choices", "validation")):
        raise ValidationError({"archived": "restore the field before changing its type or rules"})
    _definition_clean(field)
    changed = next(
        (
            key
            for key in ("field_type", "choices", "validation")
            if before[key] != snapshot(field, [key])[key]
        ),
        None,
    )
    if changed:
        _values_still_fit(field, changed, before["field_type"])
    field.save()
    audit_record(
        actor=actor,
        action="custom_field.update",
        target=field,
        before=before,
        after=snapshot(field, FIELD_STATE),
    )
    return field


@transaction.atomic
def custom_field_archive(*, actor: Any, field: CustomField, archived: bool = True) -> CustomField:
    """C10.1: archive (or restore) a field. Archived fields keep their values, which are still shown
    and exported, but no one can change them and new records do not ask for them."""
    _check_admin(actor)
    field = CustomField.objects.select_for_update().get(pk=field.pk)
    before = snapshot(field, FIELD_STATE)
    if field.archived != archived:
        field.archived = archived
        field.save(update_fields=["archived"])
    audit_record(
        actor=actor,
        action="custom_field.archive" if archived else "custom_field.restore",
        target=field,
        before=before,
        after=snapshot(field, FIELD_STATE),
    )
    return field
