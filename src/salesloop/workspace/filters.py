"""Lead list filters on custom fields (SPEC C10.1), in the query string of the page and the API:

    cf.<name>=<value>          text, long text, link: contains (any case) · choice: equals
                               multi-choice: has this choice · number, money, date: equals
                               file: `yes` (has a file) or `no`
    cf.<name>.min=<value>      number, money, date: at least (inclusive)
    cf.<name>.max=<value>      number, money, date: at most (inclusive)

Values are compared through the database's JSON functions (`->>` on PostgreSQL, `JSON_EXTRACT` on
SQLite), so the same filter works on both; numbers and money are compared as numbers, dates as dates.
A bad filter raises `crm.selectors.FilterError` naming the parameter (the API answers 422)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.db.models import DateField, FloatField, Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.db.models.lookups import Exact, GreaterThanOrEqual, IContains, LessThanOrEqual

from salesloop.crm.selectors import FilterError
from salesloop.workspace import values as field_values
from salesloop.workspace.models import CustomField, CustomFieldType
from salesloop.workspace.selectors import custom_fields_all

T = CustomFieldType
PREFIX = "cf."
MAX_FILTERS = 20
RANGED = (T.NUMBER, T.MONEY, T.DATE)


def custom_filter_params(data: Mapping[str, Any]) -> dict[str, str]:
    """The `cf.` parameters of a query string that carry a value (a form's empty inputs do not)."""
    params: dict[str, str] = {}
    for key in data:
        if not isinstance(key, str) or not key.startswith(PREFIX):
            continue
        value = data.get(key)
        if isinstance(value, list):
            value = value[-1] if value else ""
        if isinstance(value, str) and value.strip():
            params[key] = value.strip()
    return params


def _bound(field: CustomField, key: str, raw: str) -> Any:
    probe = CustomField(name=field.name, field_type=field.field_type, validation={})
    try:
        clean = field_values.value_clean(probe, raw)
    except field_values.ValueRefused as exc:
        raise FilterError(key, f"{key}: {exc}") from exc
    if field.field_type == T.DATE:
        return dt.date.fromisoformat(clean)
    return float(clean)


def _condition(field: CustomField, key: str, op: str, raw: str) -> Any:
    stored = KeyTextTransform(field.name, "custom_fields")
    if field.field_type in RANGED:
        output = DateField() if field.field_type == T.DATE else FloatField()
        number = Cast(stored, output_field=output)
        bound = _bound(field, key, raw)
        lookup = {"": Exact, "min": GreaterThanOrEqual, "max": LessThanOrEqual}[op]
        return lookup(number, bound)
    if op:
        raise FilterError(key, f"{key}: .min and .max apply to numbers, money and dates only")
    if len(raw) > 200 or "\x00" in raw:
        raise FilterError(key, f"{key}: at most 200 characters")
    if field.field_type in (T.TEXT, T.LONG_TEXT, T.LINK):
        return IContains(stored, raw)
    if field.field_type == T.CHOICE:
        _choice_check(field, key, raw)
        return Exact(stored, raw)
    if field.field_type == T.MULTI_CHOICE:
        _choice_check(field, key, raw)
        # The stored list as JSON text ('["a", "b"]' or '["a","b"]'): the quoted value is one element,
        # since choice values are lowercase slugs without quotes.
        return IContains(stored, f'"{raw}"')
    if field.field_type == T.FILE:
        if raw not in ("yes", "no"):
            raise FilterError(key, f"{key}: yes or no")
        has = Q(custom_fields__has_key=field.name)
        return has if raw == "yes" else ~has
    raise FilterError(key, f"{key}: this field cannot be filtered")


def _choice_check(field: CustomField, key: str, raw: str) -> None:
    allowed = [str(choice.get("value")) for choice in field.choices or []]
    if raw not in allowed:
        raise FilterError(key, f"{key}: one of {', '.join(allowed)}")


def lead_custom_conditions(params: Mapping[str, str]) -> list[Any]:
    """The conditions (for `QuerySet.filter`) of the `cf.` parameters, or FilterError naming the
    first parameter that cannot be applied. One query reads the definitions."""
    if not params:
        return []
    if len(params) > MAX_FILTERS:
        raise FilterError("cf", f"at most {MAX_FILTERS} custom field filters")
    fields = {field.name: field for field in custom_fields_all(entity="lead")}
    conditions = []
    for key, raw in params.items():
        name, _, op = key[len(PREFIX) :].partition(".")
        field = fields.get(name)
        if field is None:
            raise FilterError(key[:60], f"{key[:60]}: no custom field {name[:40]!r} on leads")
        if op not in ("", "min", "max"):
            raise FilterError(key[:60], f"{key[:60]}: use cf.{name}, cf.{name}.min or cf.{name}.max")
        conditions.append(_condition(field, key, op, raw))
    return conditions
