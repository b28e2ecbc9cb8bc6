"""Custom field values (SPEC C10.1): what a value of each type may be, and its stored form.

Stored forms (JSON, in `Lead.custom_fields` / `Customer.custom_fields`):
text, long_text, link → string · number → JSON number · money → string with 2 decimals ("1234.50")
choice → the choice's value · multi_choice → list of values in the definition's order
date → ISO date string ("2026-11-28") · file → id of a `crm.Attachment` of the lead (of one of the
customer's leads, for a customer field).

Errors are `ValidationError({"custom_fields.<name>": message})`, every bad field at once.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from salesloop.workspace.models import CustomField, CustomFieldType

T = CustomFieldType
TEXT_MAX_LENGTH = {T.TEXT: 200, T.LONG_TEXT: 5000}
TEXT_LIMIT = {T.TEXT: 1000, T.LONG_TEXT: 20000}  # the most a definition may allow
LINK_MAX_LENGTH = 500
NUMBER_LIMIT = Decimal("1e15")  # beyond this a float loses whole units; nobody sells 10¹⁵ of anything
MONEY_LIMIT = Decimal("1e12")
CENTS = Decimal("0.01")
_url_valid = URLValidator(schemes=["http", "https"])


class ValueRefused(ValueError):
    """One value that does not fit its field. The message (English, for the API) says why; `code`
    and `params` let pages say it in the reader's language (workspace.forms)."""

    def __init__(self, message: str, code: str = "invalid", **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


class CustomValuesRefused(ValidationError):
    """ValidationError keyed `custom_fields.<name>`, with each refusal's code and params by key."""

    def __init__(self, errors: dict[str, str], details: dict[str, tuple[str, dict[str, Any]]]) -> None:
        super().__init__(errors)
        self.details = details


def error_key(field: CustomField | str) -> str:
    return f"custom_fields.{field if isinstance(field, str) else field.name}"


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueRefused("must be a number", "not_number")
    try:
        number = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation as exc:
        raise ValueRefused(f"not a number: {str(value)[:40]!r}", "not_number") from exc
    if not number.is_finite():
        raise ValueRefused("must be a finite number", "not_number")
    return number


def _within(value: Any, field: CustomField, parse: Any) -> None:
    rules = field.validation or {}
    if rules.get("min") not in (None, "") and value < parse(rules["min"]):
        raise ValueRefused(f"must be at least {rules['min']}", "min", min=rules["min"])
    if rules.get("max") not in (None, "") and value > parse(rules["max"]):
        raise ValueRefused(f"must be at most {rules['max']}", "max", max=rules["max"])


def _text(value: Any, field: CustomField) -> str:
    if not isinstance(value, str):
        raise ValueRefused("must be text", "not_text")
    if "\x00" in value:
        raise ValueRefused("must not contain NUL characters", "not_text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueRefused("must be valid Unicode text", "not_text") from exc
    text = value.strip()
    limit = int((field.validation or {}).get("max_length") or TEXT_MAX_LENGTH.get(field.field_type, 200))
    if len(text) > limit:
        raise ValueRefused(f"at most {limit} characters", "too_long", limit=limit)
    pattern = (field.validation or {}).get("pattern")
    if pattern and field.field_type == T.TEXT and not re.fullmatch(pattern, text):
        raise ValueRefused(f"does not match the pattern {pattern}", "pattern")
    return text


def _number(value: Any, field: CustomField) -> int | float:
    number = _decimal(value)
    if abs(number) >= NUMBER_LIMIT:
        raise ValueRefused("too large", "too_large")
    _within(number, field, _decimal)
    return int(number) if number == number.to_integral_value() else float(number)


def _money(value: Any, field: CustomField) -> str:
    amount = _decimal(value)
    if abs(amount) >= MONEY_LIMIT:
        raise ValueRefused("too large", "too_large")
    if amount != amount.quantize(CENTS):
        raise ValueRefused("at most 2 decimal places", "decimals")
    _within(amount, field, _decimal)
    return str(amount.quantize(CENTS))


def _choice_values(field: CustomField) -> list[str]:
    return [str(choice.get("value")) for choice in field.choices or []]


def _choice(value: Any, field: CustomField) -> str:
    allowed = _choice_values(field)
    if not isinstance(value, str) or value not in allowed:
        raise ValueRefused(f"one of {', '.join(allowed)}", "not_choice")
    return value


def _multi_choice(value: Any, field: CustomField) -> list[str]:
    allowed = _choice_values(field)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueRefused("must be a list of choices", "not_choice")
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise ValueRefused(
            f"not a choice: {unknown[0][:40]!r}; choose from {', '.join(allowed)}", "not_choice"
        )
    return [v for v in allowed if v in value]  # the definition's order, no repeats


def _date(value: Any, field: CustomField) -> str:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        day = value
    elif isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            day = dt.date.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueRefused("not a date (YYYY-MM-DD)", "not_date") from exc
    else:
        raise ValueRefused("a date as YYYY-MM-DD", "not_date")
    _within(day, field, dt.date.fromisoformat)
    return day.isoformat()


def _link(value: Any, field: CustomField) -> str:
    if not isinstance(value, str):
        raise ValueRefused("must be a link (http or https URL)", "not_link")
    url = value.strip()
    if len(url) > LINK_MAX_LENGTH:
        raise ValueRefused(f"at most {LINK_MAX_LENGTH} characters", "too_long", limit=LINK_MAX_LENGTH)
    try:
        _url_valid(url)
    except ValidationError as exc:
        raise ValueRefused("must be a link starting with http:// or https://", "not_link") from exc
    return url


def _file(value: Any, field: CustomField, record: Any) -> int:
    from salesloop.crm.models import Attachment, Customer

    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise ValueRefused("the id of an attachment of this lead", "not_file")
    attachment_id = int(value)
    if record is None or record.pk is None or not 0 < attachment_id < 2**63:
        raise ValueRefused("attach the file to the lead first, then set its id", "not_file")
    attachments = Attachment.objects.filter(pk=attachment_id, removed_at__isnull=True)
    if isinstance(record, Customer):
        attachments = attachments.filter(lead__customer_id=record.pk)
    else:
        attachments = attachments.filter(lead_id=record.pk)
    if not attachments.exists():
        raise ValueRefused(f"no attachment #{attachment_id} on this record", "not_file")
    return attachment_id


_CLEANERS = {
    T.TEXT: _text,
    T.LONG_TEXT: _text,
    T.NUMBER: _number,
    T.MONEY: _money,
    T.CHOICE: _choice,
    T.MULTI_CHOICE: _multi_choice,
    T.DATE: _date,
    T.LINK: _link,
}


def value_clean(field: CustomField, value: Any, *, record: Any = None) -> Any:
    """The stored form of one non-empty value, or ValueRefused saying why not."""
    if field.field_type == T.FILE:
        return _file(value, field, record)
    return _CLEANERS[CustomFieldType(field.field_type)](value, field)


def values_clean(
    fields: Iterable[CustomField],
    values: Mapping[str, Any] | None,
    *,
    partial: bool,
    record: Any = None,
) -> dict[str, Any]:
    """Validate `values` against the definitions `fields` (all of one entity, archived included).

    partial=False (a new record): required fields must have a value; empty values are left out.
    partial=True (a change): only the given keys; an empty value clears the field and comes back
    as None, which the caller removes — a required field cannot be cleared.
    Archived fields are read-only: only their current value (from `record`) is accepted back.
    """
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ValidationError({"custom_fields": "must be an object of field name → value"})
    by_name = {field.name: field for field in fields}
    current = getattr(record, "custom_fields", None) or {}
    errors: dict[str, str] = {}
    details: dict[str, tuple[str, dict[str, Any]]] = {}
    cleaned: dict[str, Any] = {}
    for name, value in values.items():
        field = by_name.get(str(name))
        if field is None:
            errors[error_key(str(name)[:60])] = "no such custom field"
            details[error_key(str(name)[:60])] = ("unknown", {})
            continue
        if field.archived:
            if name in current and current[name] == value:
                continue  # echoing the kept value back is not an edit
            errors[error_key(field)] = "this field is archived: its values are kept but cannot be changed"
            details[error_key(field)] = ("archived", {})
            continue
        if is_empty(value):
            if field.validation.get("required"):
                errors[error_key(field)] = "required"
                details[error_key(field)] = ("required", {})
            elif partial:
                cleaned[field.name] = None
            continue
        try:
            cleaned[field.name] = value_clean(field, value, record=record)
        except ValueRefused as exc:
            errors[error_key(field)] = str(exc)
            details[error_key(field)] = (exc.code, exc.params)
    if not partial:
        for field in by_name.values():
            if not field.archived and field.validation.get("required") and field.name not in cleaned:
                errors.setdefault(error_key(field), "required")
                details.setdefault(error_key(field), ("required", {}))
    if errors:
        raise CustomValuesRefused(errors, details)
    return cleaned


def values_merge(current: Mapping[str, Any] | None, cleaned: Mapping[str, Any]) -> dict[str, Any]:
    """A record's values after a partial change: None clears a field."""
    merged = dict(current or {})
    for name, value in cleaned.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged
