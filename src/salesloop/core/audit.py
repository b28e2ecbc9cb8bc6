"""The audit log every configuration change and important-record change writes (DESIGN.md rule 3)."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import models

from salesloop.core.models import AuditEntry, PersonalDataAccess

_PLAIN = frozenset({str, int, float, bool, type(None)})


def jsonable(value: Any) -> Any:
    """A JSON-safe copy of a value: Decimals and datetimes become strings, models their pk."""
    if type(value) in _PLAIN:  # most values, taken before the isinstance checks (Mapping's is slow)
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    return value


def snapshot(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """The listed fields of a record as JSON, foreign keys by id."""
    return {name: jsonable(getattr(instance, attname)) for name, attname in _attnames(type(instance), fields)}


_ATTNAMES: dict[tuple[type[models.Model], tuple[str, ...]], list[tuple[str, str]]] = {}


def _attnames(model: type[models.Model], fields: Iterable[str]) -> list[tuple[str, str]]:
    """(name, attribute) of each listed field — a foreign key's attribute is its id — worked out
    once per model and list (a webhook batch snapshots every lead it creates)."""
    names = tuple(fields)
    key = (model, names)
    found = _ATTNAMES.get(key)
    if found is None:
        found = _ATTNAMES[key] = [
            (name, getattr(model._meta.get_field(name), "attname", name)) for name in names
        ]
    return found


def audit_record(
    *,
    actor: Any,
    action: str,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str | int = "",
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reason: str = "",
) -> AuditEntry:
    if target is not None:
        target_type = target._meta.label_lower
        target_id = target.pk
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        before=jsonable(before) if before is not None else None,
        after=jsonable(after) if after is not None else None,
        reason=reason,
    )


def personal_data_access_record(
    *, actor: Any, subject: models.Model, fields: list[str], channel: str, kind: str = "view"
) -> PersonalDataAccess:
    return PersonalDataAccess.objects.create(
        actor=actor,
        kind=kind,
        subject_type=subject._meta.label_lower,
        subject_id=str(subject.pk),
        fields=fields,
        channel=channel,
    )
