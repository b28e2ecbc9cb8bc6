"""Alerts (SPEC C9 alerts; docs/alerts.md): a condition raises one alert when it starts and clears
it when it ends; a raised alert reaches its recipients in-app and the group robots that cover its
scope through the outbox (notify.outbox)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from salesloop.core import clock
from salesloop.notify.models import Alert, BotChannel, BotDelivery
from salesloop.notify.services import notification_send

KIND_LABELS = {
    "indicator.conversion": gettext_lazy("Conversion warning"),
    "indicator.stall": gettext_lazy("Stall warning"),
    "indicator.response": gettext_lazy("Response warning"),
    "health.red": gettext_lazy("Health red flag"),
}
KNOWN_KINDS = tuple(KIND_LABELS)
KEY_LENGTH = 200  # Alert.key's length
EXPLANATION_LINES = 8  # scalar facts of an explanation shown in a robot message


def alert_state_set(
    *,
    key: str,
    active: bool,
    kind: str,
    title: str,
    body: str,
    explanation: dict[str, Any],
    link: str,
    suggested_response: str = "",
    region: Any = None,
    team: Any = None,
    recipients: Iterable[Any],
) -> Alert | None:
    """C9: the condition `key` is (not) in warning now. Entering it raises one alert — in-app
    notices to `recipients`, one outbox message per enabled robot covering the scope — and returns
    it; staying in it does nothing; leaving it clears the open alert (no message). Returns the
    alert only when one was raised. Two evaluations at once raise one alert: the partial unique
    index on open keys refuses the second insert."""
    if len(key) > KEY_LENGTH:
        raise ValueError(f"an alert key has at most {KEY_LENGTH} characters: {key[:40]}…")
    if not active:
        alerts_clear(keys=[key])
        return None
    if Alert.objects.filter(key=key, cleared_at__isnull=True).exists():
        return None
    with transaction.atomic():
        try:
            with transaction.atomic():  # a savepoint: losing the race must not spoil the caller
                alert = Alert.objects.create(
                    kind=kind[:40],
                    key=key,
                    region=region,
                    team=team,
                    title=title[:200],
                    body=body,
                    explanation=explanation,
                    link=link[:500],
                    suggested_response=suggested_response,
                    raised_at=clock.now(),
                )
        except IntegrityError:
            if Alert.objects.filter(key=key, cleared_at__isnull=True).exists():
                return None  # another evaluation raised it a moment ago
            raise
        people = {person.pk: person for person in recipients if person is not None and person.is_active}
        alert.recipients.set(people.values())
        for person in people.values():
            notification_send(user=person, kind=kind[:40], title=title, body=body, link=link)
        if deliveries_enqueue(alert=alert):
            delivery_kick_on_commit()
    return alert


def alerts_clear(*, keys: list[str]) -> int:
    """The conditions ended: close their open alerts (one statement, also for a daily run's many)."""
    if not keys:
        return 0
    return Alert.objects.filter(key__in=keys, cleared_at__isnull=True).update(cleared_at=clock.now())


def channels_covering(alert: Alert) -> list[BotChannel]:
    """Enabled robots whose scope holds the alert: the organisation's, its region's (a team's
    alert belongs to the team's region too), its team's; and that take its kind."""
    region_id = alert.region_id or (alert.team.region_id if alert.team_id and alert.team else None)
    scope = Q(region__isnull=True, team__isnull=True)
    if region_id:
        scope |= Q(region_id=region_id)
    if alert.team_id:
        scope |= Q(team_id=alert.team_id)
    channels = BotChannel.objects.filter(scope, enabled=True).order_by("id")
    return [c for c in channels if not c.alert_kinds or alert.kind in c.alert_kinds]


def deliveries_enqueue(*, alert: Alert) -> int:
    """One outbox row per covering robot, its message rendered now (in the organisation's language)."""
    channels = channels_covering(alert)
    if not channels:
        return 0
    message = message_of(alert)
    BotDelivery.objects.bulk_create(
        [BotDelivery(alert=alert, channel=c, message=message, next_attempt_at=clock.now()) for c in channels],
        ignore_conflicts=True,  # the (alert, channel) pair is unique: never two messages
    )
    return len(channels)


def absolute_link(link: str) -> str:
    if link.startswith("/"):
        return settings.SITE_URL + link
    return link


def explanation_lines(explanation: dict[str, Any]) -> list[str]:
    """The explanation's words for people: its `summary` if it has one, else its scalar facts."""
    summary = explanation.get("summary")
    if isinstance(summary, str) and summary:
        return [summary]
    lines = []
    for name, value in explanation.items():
        if name in ("kind", "version") or isinstance(value, dict | list):
            continue
        lines.append(f"{name}: {value}")
    return lines[:EXPLANATION_LINES]


def message_of(alert: Alert) -> dict[str, str]:
    """The robot message: title, body, why, what to do, the drill-down link (markdown)."""
    with translation.override(settings.LANGUAGE_CODE):
        parts = [f"### {alert.title}"]
        if alert.body:
            parts.append(alert.body)
        why = explanation_lines(alert.explanation or {})
        if why:
            parts.append(f"**{_('Why')}**\n" + "\n".join(f"> {line}" for line in why))
        if alert.suggested_response:
            parts.append(f"**{_('Suggested response')}**: {alert.suggested_response}")
        if alert.link:
            parts.append(f"[{_('Open the details')}]({absolute_link(alert.link)})")
        return {"title": alert.title, "text": "\n\n".join(parts)}


def delivery_kick_on_commit() -> None:
    """Start a delivery run once the alert is committed (once per transaction, however many alerts
    it raised: a daily recompute may raise hundreds)."""
    if any(getattr(entry[1], "__name__", "") == "_kick" for entry in connection.run_on_commit):
        return
    transaction.on_commit(_kick)


def _kick() -> None:
    from salesloop.notify.tasks import bots_deliver

    bots_deliver.enqueue()
