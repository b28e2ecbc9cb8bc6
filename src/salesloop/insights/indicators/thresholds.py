"""Indicator thresholds as versioned configuration (SPEC C9, DESIGN.md rule 3): the source's numbers
by default, new versions by admins (and directors) with an effective time, validated field by field,
audited with the state before and after."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from salesloop.core import clock
from salesloop.core.audit import audit_record
from salesloop.core.roles import Role
from salesloop.insights.models.indicators import IndicatorThresholds


@dataclass(frozen=True)
class Thresholds:
    version: int
    conversion_healthy: float = 0.38
    conversion_warning: float = 0.30
    conversion_window_days: int = 28
    stall_healthy_days: float = 4.2
    stall_warning_days: float = 5.5
    stall_demo_share: float = 0.45
    response_healthy: float = 0.61
    response_warning: float = 0.48
    response_drop_points: float = 0.15
    response_drop_relative: float = 0.25
    response_drop_min_touches: int = 10

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# field → (kind, lowest, highest); rates are fractions (0.38 = 38 %)
FIELDS: dict[str, tuple[str, float, float]] = {
    "conversion_healthy": ("rate", 0, 1),
    "conversion_warning": ("rate", 0, 1),
    "conversion_window_days": ("int", 1, 366),
    "stall_healthy_days": ("days", 0, 365),
    "stall_warning_days": ("days", 0, 365),
    "stall_demo_share": ("rate", 0, 1),
    "response_healthy": ("rate", 0, 1),
    "response_warning": ("rate", 0, 1),
    "response_drop_points": ("rate", 0, 1),
    "response_drop_relative": ("rate", 0, 1),
    "response_drop_min_touches": ("int", 1, 100_000),
}

DEFAULTS = Thresholds(version=0)


def thresholds_of(row: IndicatorThresholds | None) -> Thresholds:
    if row is None:
        return DEFAULTS
    values = {
        name: (int(getattr(row, name)) if kind == "int" else float(getattr(row, name)))
        for name, (kind, _lo, _hi) in FIELDS.items()
    }
    return Thresholds(version=row.version, **values)


def thresholds_in_force(at: dt.datetime | None = None) -> Thresholds:
    row = (
        IndicatorThresholds.objects.filter(effective_from__lte=at or clock.now())
        .order_by("-effective_from", "-version")
        .first()
    )
    return thresholds_of(row)


def may_configure(user: Any) -> bool:
    return bool(getattr(user, "is_superuser", False)) or getattr(user, "role", None) in (
        Role.ADMIN,
        Role.DIRECTOR,
    )


def thresholds_validate(values: dict[str, Any]) -> dict[str, Decimal | int]:
    """Each field a number in its range; the healthy line on the right side of the warning line.
    Errors name the field."""
    errors: dict[str, str] = {}
    clean: dict[str, Decimal | int] = {}
    for name, (kind, lowest, highest) in FIELDS.items():
        raw = values.get(name, getattr(DEFAULTS, name))
        try:
            if isinstance(raw, bool):
                raise InvalidOperation
            number = Decimal(str(raw).strip())
            if not number.is_finite():
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            errors[name] = _("Enter a number.")
            continue
        if kind == "int" and number != number.to_integral_value():
            errors[name] = _("Enter a whole number.")
            continue
        if not lowest <= number <= highest:
            errors[name] = _("Enter a number from %(lowest)s to %(highest)s.") % {
                "lowest": lowest,
                "highest": highest,
            }
            continue
        clean[name] = int(number) if kind == "int" else number.quantize(Decimal("0.0001"))
    if not errors:
        if clean["conversion_warning"] > clean["conversion_healthy"]:
            errors["conversion_warning"] = _("The warning line cannot be above the healthy line.")
        if clean["stall_warning_days"] < clean["stall_healthy_days"]:
            errors["stall_warning_days"] = _("The warning line cannot be below the healthy line.")
        if clean["response_warning"] > clean["response_healthy"]:
            errors["response_warning"] = _("The warning line cannot be above the healthy line.")
    if errors:
        raise ValidationError(errors)
    return clean


def _state(row: IndicatorThresholds) -> dict[str, Any]:
    return {
        "version": row.version,
        "effective_from": row.effective_from.isoformat(),
        **{name: str(getattr(row, name)) for name in FIELDS},
    }


@transaction.atomic
def indicator_thresholds_create(
    *, actor: Any, values: dict[str, Any], effective_from: dt.datetime | None = None, note: str = ""
) -> IndicatorThresholds:
    """C9: a new version of the thresholds, in force from `effective_from` (now by default; never in
    the past: values already evaluated keep the version they were evaluated under). Audited with the
    version it replaces as `before`."""
    if not may_configure(actor):
        raise PermissionDenied(
            _("Only a sales director or an administrator may change indicator thresholds.")
        )
    clean = thresholds_validate(values)
    now = clock.now()
    effective_from = effective_from or now
    if effective_from < now - dt.timedelta(minutes=1):
        raise ValidationError({"effective_from": _("A version cannot take effect in the past.")})
    latest = IndicatorThresholds.objects.select_for_update().aggregate(v=Max("version"))["v"] or 0
    previous = IndicatorThresholds.objects.filter(version=latest).first()
    row = IndicatorThresholds.objects.create(
        version=latest + 1, effective_from=effective_from, created_by=actor, note=note[:2000], **clean
    )
    before = (
        _state(previous)
        if previous
        else {"version": 0, **{k: str(v) for k, v in DEFAULTS.as_dict().items() if k != "version"}}
    )
    audit_record(
        actor=actor, action="insights.thresholds_create", target=row, before=before, after=_state(row)
    )
    return row
