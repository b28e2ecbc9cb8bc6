"""The audit log every configuration change and important-record change writes (DESIGN.md rule 3)."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import models

from salesloop.core.models import AuditEntry, PersonalDataAccess


def jsonable(value: Any) -> Any:
    """A JSON-safe copy of a value: Decimals and datetimes become strings, models their pk."""
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
    state: dict[str, Any] = {}
    for name in fields:
        field = instance._meta.get_field(name)
        attname = getattr(field, "attname", name)
        state[name] = jsonable(getattr(instance, attname))
    return state


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
