"""Roles and what each may see (DESIGN.md rule 4). Selectors everywhere scope through these."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    REP = "rep", _("Sales rep")
    MANAGER = "manager", _("Regional manager")
    DIRECTOR = "director", _("Sales director")
    PRODUCT_MANAGER = "product_manager", _("Product manager")
    ADMIN = "admin", _("Administrator")


ALL_RECORDS_ROLES = frozenset({Role.DIRECTOR, Role.PRODUCT_MANAGER, Role.ADMIN})


def sees_all(user: Any) -> bool:
    return bool(user.is_superuser) or user.role in ALL_RECORDS_ROLES


def is_admin(user: Any) -> bool:
    return bool(user.is_superuser) or user.role == Role.ADMIN


def may_see_personal_data(
    user: Any, *, owner_id: int | None, owner_region_id: int | None, record_region_id: int | None
) -> bool:
    """Phone and WeCom id unmasked only for the owner, the owner's manager and admins.

    A record nobody owns yet (waiting in the pool) is the region manager's to hand out, so they
    see it unmasked too. Directors and product managers see everything, but masked: they review,
    they do not call.
    """
    if is_admin(user):
        return True
    if owner_id is not None and owner_id == user.pk:
        return True
    if user.role == Role.MANAGER and user.region_id is not None:
        if owner_id is not None:
            return owner_region_id == user.region_id
        return record_region_id == user.region_id
    return False


def mask_phone(e164: str | None) -> str:
    """`+8613800138000` → `138****8000`: keeps enough to recognise a number, not to dial it."""
    if not e164:
        return ""
    national = e164[3:] if e164.startswith("+86") else e164.lstrip("+")
    if len(national) <= 7:
        return national[:2] + "*" * max(len(national) - 4, 1) + national[-2:]
    return national[:3] + "****" + national[-4:]


def mask_identifier(value: str | None) -> str:
    if not value:
        return ""
    if len(value) <= 6:
        return value[:1] + "***"
    return value[:3] + "***" + value[-3:]
