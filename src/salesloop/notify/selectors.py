"""Reads of alerts and robot deliveries, scoped by role (DESIGN.md rule 4): a rep sees the alerts
addressed to them; a manager their region's and its teams' (and their own); directors, product
managers and admins all. Deliveries are seen by whoever manages their channel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404

from salesloop.core.roles import Role, sees_all
from salesloop.crm.selectors import FilterError
from salesloop.notify.channels import channels_visible
from salesloop.notify.models import Alert, AlertRecipient, BotDelivery, DeliveryStatus

ALERT_STATUSES = ("open", "cleared", "all")


def alerts_visible(*, user: Any) -> QuerySet[Alert]:
    alerts = Alert.objects.all()
    if sees_all(user):
        return alerts
    # EXISTS, probed per alert on the (user, alert) index: newest first, the list stops after a
    # page, where `IN (all of the user's alerts)` would first gather every one of them.
    addressed = Q(Exists(AlertRecipient.objects.filter(alert_id=OuterRef("pk"), user_id=user.pk)))
    if user.role == Role.MANAGER and user.region_id is not None:
        return alerts.filter(addressed | Q(region_id=user.region_id) | Q(team__region_id=user.region_id))
    return alerts.filter(addressed)


@dataclass(frozen=True)
class AlertPage:
    alerts: list[Alert]
    next_before: int | None  # the keyset cursor of the next page


def alerts_page(
    *, user: Any, status: str = "all", before: int | None = None, limit: int | None = None
) -> AlertPage:
    """Newest first, keyset-paginated by id; each alert with its deliveries (two queries)."""
    if status not in ALERT_STATUSES:
        raise FilterError("status", f"status must be one of {', '.join(ALERT_STATUSES)}")
    limit = limit or settings.SALESLOOP_PAGE_SIZE
    alerts = alerts_visible(user=user).select_related("region", "team")
    if status == "open":
        alerts = alerts.filter(cleared_at__isnull=True)
    elif status == "cleared":
        alerts = alerts.filter(cleared_at__isnull=False)
    if before is not None:
        alerts = alerts.filter(id__lt=before)
    # The rendered message is what was sent, not what a list shows: left in the database.
    deliveries = BotDelivery.objects.select_related("channel").defer("message").order_by("id")
    rows = list(
        alerts.order_by("-id").prefetch_related(Prefetch("deliveries", queryset=deliveries))[: limit + 1]
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return AlertPage(alerts=rows, next_before=rows[-1].pk if more else None)


def alert_get(*, user: Any, alert_id: int) -> Alert:
    deliveries = BotDelivery.objects.select_related("channel").order_by("id")
    alert = (
        alerts_visible(user=user)
        .select_related("region", "team")
        .prefetch_related(Prefetch("deliveries", queryset=deliveries))
        .filter(pk=alert_id)
        .first()
    )
    if alert is None:
        raise Http404
    return alert


def deliveries_visible(*, user: Any) -> QuerySet[BotDelivery]:
    return BotDelivery.objects.filter(channel__in=channels_visible(user=user).values("id"))


@dataclass(frozen=True)
class DeliveryPage:
    deliveries: list[BotDelivery]
    next_before: int | None


# What a person should look at: given up on, or possibly delivered without an answer saying so.
NEEDS_ATTENTION = f"{DeliveryStatus.FAILED},{DeliveryStatus.UNCERTAIN}"


def delivery_statuses_parse(status: str | None) -> list[str]:
    """`failed` or several statuses comma-separated (`failed,uncertain`); none means all."""
    if not status:
        return []
    statuses = [part.strip() for part in status.split(",")]
    if any(part not in DeliveryStatus.values for part in statuses):
        raise FilterError(
            "status", f"status must be one or more (comma-separated) of {', '.join(DeliveryStatus.values)}"
        )
    return list(dict.fromkeys(statuses))


def deliveries_page(
    *, user: Any, status: str | None = None, before: int | None = None, limit: int | None = None
) -> DeliveryPage:
    statuses = delivery_statuses_parse(status)
    limit = limit or settings.SALESLOOP_PAGE_SIZE
    deliveries = deliveries_visible(user=user).select_related("channel", "alert")
    if statuses:
        deliveries = deliveries.filter(status__in=statuses)
    if before is not None:
        deliveries = deliveries.filter(id__lt=before)
    rows = list(deliveries.order_by("-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return DeliveryPage(deliveries=rows, next_before=rows[-1].pk if more else None)


def delivery_get(*, user: Any, delivery_id: int) -> BotDelivery:
    delivery = deliveries_visible(user=user).select_related("channel", "alert").filter(pk=delivery_id).first()
    if delivery is None:
        raise Http404
    return delivery
