"""Group-robot channels (SPEC C9 alerts; docs/alerts.md): configuration, validated field by field
and audited. Administrators and sales directors manage every channel; a regional manager those of
their own region and of its teams."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from salesloop.accounts.models import Region, Team
from salesloop.core import clock
from salesloop.core.audit import audit_record
from salesloop.core.roles import Role, is_admin
from salesloop.notify.alerts import KNOWN_KINDS
from salesloop.notify.bots import webhook_url_error, webhook_url_masked
from salesloop.notify.models import BotChannel, BotKind

SECRET_PREFIX = "SEC"  # noqa: S105 - a prefix to check, not a secret: DingTalk secrets read SEC…


def manages_all_channels(user: Any) -> bool:
    return is_admin(user) or user.role == Role.DIRECTOR


def may_manage_channels(user: Any) -> bool:
    return manages_all_channels(user) or (user.role == Role.MANAGER and user.region_id is not None)


def channels_visible(*, user: Any) -> QuerySet[BotChannel]:
    """The channels this user manages (and sees): all, their region's and its teams', or none."""
    channels = BotChannel.objects.select_related("region", "team").order_by("name", "id")
    if manages_all_channels(user):
        return channels
    if user.role == Role.MANAGER and user.region_id is not None:
        return channels.filter(Q(region_id=user.region_id) | Q(team__region_id=user.region_id))
    return channels.none()


def channel_get(*, user: Any, channel_id: int) -> BotChannel:
    channel = channels_visible(user=user).filter(pk=channel_id).first()
    if channel is None:
        raise Http404
    return channel


def channel_state(channel: BotChannel) -> dict[str, Any]:
    """For the audit log: the secret and the webhook's token never leave in clear."""
    return {
        "kind": channel.kind,
        "name": channel.name,
        "webhook_url": webhook_url_masked(channel.webhook_url),
        "secret_set": bool(channel.secret),
        "region": channel.region_id,
        "team": channel.team_id,
        "enabled": channel.enabled,
        "alert_kinds": list(channel.alert_kinds),
    }


def _clean(*, actor: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Check every field, collect every error by field name, return the values to store."""
    errors: dict[str, str] = {}
    kind = values.get("kind")
    if kind not in BotKind.values:
        errors["kind"] = _("Choose WeCom or DingTalk.")
    name = str(values.get("name") or "").strip()
    if not name:
        errors["name"] = _("Give the channel a name.")
    elif len(name) > 80:
        errors["name"] = _("At most 80 characters.")
    url = str(values.get("webhook_url") or "").strip()
    if kind in BotKind.values:
        problem = webhook_url_error(kind, url) if url else _("The webhook URL is required.")
        if problem is None and len(url) > 500:
            problem = _("At most 500 characters.")
        if problem:
            errors["webhook_url"] = problem
    secret = str(values.get("secret") or "").strip()
    if secret:
        if kind == BotKind.WECOM:
            errors["secret"] = _("WeCom robots are not signed: leave the secret empty.")
        elif not secret.startswith(SECRET_PREFIX) or len(secret) > 200 or not secret.isascii():
            errors["secret"] = _("DingTalk's signing secret starts with SEC.")
    region, team = None, None
    region_id, team_id = values.get("region_id"), values.get("team_id")
    if region_id and team_id:
        errors["team_id"] = _("A channel covers a region or a team, not both.")
    elif region_id:
        region = Region.objects.filter(pk=region_id).first()
        if region is None:
            errors["region_id"] = _("No such region.")
    elif team_id:
        team = Team.objects.filter(pk=team_id).first()
        if team is None:
            errors["team_id"] = _("No such team.")
    if not manages_all_channels(actor) and not errors.keys() & {"region_id", "team_id"}:
        own = actor.region_id
        if (
            (region is None and team is None)
            or (region and region.pk != own)
            or (team and team.region_id != own)
        ):
            errors["region_id"] = _("You may only set up channels for your own region or its teams.")
    kinds = values.get("alert_kinds") or []
    if not isinstance(kinds, list | tuple) or any(k not in KNOWN_KINDS for k in kinds):
        errors["alert_kinds"] = _("Unknown alert kind; choose from: %(kinds)s") % {
            "kinds": ", ".join(KNOWN_KINDS)
        }
    if errors:
        raise ValidationError(errors)
    return {
        "kind": kind,
        "name": name,
        "webhook_url": url,
        "secret": secret,
        "region": region,
        "team": team,
        "enabled": bool(values.get("enabled", True)),
        "alert_kinds": sorted(set(kinds)),
    }


@transaction.atomic
def channel_create(*, actor: Any, **values: Any) -> BotChannel:
    """C9: a robot that receives the alerts of a scope (audited)."""
    if not may_manage_channels(actor):
        raise PermissionDenied(_("Only administrators, sales directors and regional managers set up robots."))
    clean = _clean(actor=actor, values=values)
    channel = BotChannel.objects.create(created_by=actor, **clean)
    audit_record(actor=actor, action="notify.channel_create", target=channel, after=channel_state(channel))
    return channel


@transaction.atomic
def channel_update(*, actor: Any, channel: BotChannel, **changes: Any) -> BotChannel:
    """Change some fields; a secret left out (or blank) keeps the stored one, `secret_clear` drops it."""
    channel = BotChannel.objects.select_for_update().get(pk=channel.pk)
    before = channel_state(channel)
    values = {
        "kind": channel.kind,
        "name": channel.name,
        "webhook_url": channel.webhook_url,
        "secret": channel.secret,
        "region_id": channel.region_id,
        "team_id": channel.team_id,
        "enabled": channel.enabled,
        "alert_kinds": channel.alert_kinds,
    }
    for name, value in changes.items():
        if name == "secret" and not value:
            continue
        if name in values:
            values[name] = value
    if changes.get("secret_clear"):
        values["secret"] = ""
    if "region_id" in changes and changes["region_id"] and "team_id" not in changes:
        values["team_id"] = None  # moving to a region leaves the team
    if "team_id" in changes and changes["team_id"] and "region_id" not in changes:
        values["region_id"] = None
    clean = _clean(actor=actor, values=values)
    for name, value in clean.items():
        setattr(channel, name, value)
    channel.updated_at = clock.now()
    channel.save()
    audit_record(
        actor=actor,
        action="notify.channel_update",
        target=channel,
        before=before,
        after=channel_state(channel),
    )
    return channel
