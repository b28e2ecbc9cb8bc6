from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from salesloop.accounts.models import ApiToken, Region, Team, User
from salesloop.core import clock
from salesloop.core.audit import audit_record
from salesloop.core.roles import Role

TOKEN_PREFIX = "sl_"  # noqa: S105 -- a public marker of our tokens, not a secret


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def user_create(
    *,
    actor: User | None,
    username: str,
    password: str,
    role: str,
    region: Region | None = None,
    team: Team | None = None,
    display_name: str = "",
    email: str = "",
) -> User:
    if role not in Role.values:
        raise ValidationError({"role": f"unknown role {role!r}; one of {', '.join(Role.values)}"})
    if role == Role.MANAGER and region is None:
        raise ValidationError({"region": "a regional manager needs a region"})
    if not username:
        raise ValidationError({"username": "required"})
    if User.objects.filter(username=username).exists():
        raise ValidationError({"username": f"{username!r} is taken"})
    user = User(
        username=username,
        role=role,
        region=region,
        team=team,
        display_name=display_name,
        email=email,
        is_staff=role == Role.ADMIN,
        is_superuser=role == Role.ADMIN,
    )
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    audit_record(
        actor=actor,
        action="user.create",
        target=user,
        after={"username": username, "role": role, "region": region.pk if region else None},
    )
    return user


@transaction.atomic
def token_create(*, actor: User | None, user: User, name: str = "cli") -> tuple[ApiToken, str]:
    """Returns the record and the token itself, which is never stored and cannot be shown again."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken.objects.create(user=user, name=name, prefix=token[:10], key_hash=_token_hash(token))
    audit_record(actor=actor, action="token.create", target=record, after={"user": user.pk, "name": name})
    return record, token


def token_authenticate(token: str) -> User | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    record = (
        ApiToken.objects.select_related("user", "user__region")
        .filter(key_hash=_token_hash(token), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if record is None:
        return None
    now = clock.now()
    # One write per minute at most: a hot API client must not turn every read into a write.
    if record.last_used_at is None or (now - record.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=record.pk).update(last_used_at=now)
    return record.user


def user_as_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.pk,
        "username": user.username,
        "display_name": str(user),
        "role": user.role,
        "region": user.region.name if user.region_id and user.region else None,
    }
