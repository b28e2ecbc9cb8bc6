"""The robots' outbox (docs/alerts.md): due rows are claimed, sent, and recorded; a failure is
retried on a fixed schedule (1 min, 5 min, 30 min, 2 h, 12 h) and then marked failed, visible and
retryable by hand.

Claims are exclusive, so two workers never send one row: PostgreSQL takes the due rows with
`SELECT … FOR UPDATE SKIP LOCKED` and marks them `sending` in that transaction; SQLite (one writer
at a time) marks each row with a conditional UPDATE that only one worker can win. The HTTP request
happens outside any transaction. A worker that dies mid-send leaves its rows `sending`; after
`CLAIM_LEASE` another worker takes them again (the one case where a robot might see a message
twice: it may have answered the dead worker).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _

from salesloop.core import clock
from salesloop.core.audit import audit_record
from salesloop.notify import bots
from salesloop.notify.models import BotDelivery, DeliveryStatus

BACKOFF = (
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=12),
)
MAX_ATTEMPTS = len(BACKOFF) + 1  # the first try and one per step of the schedule
CLAIM_LEASE = dt.timedelta(minutes=10)  # longer than any request's timeout
BATCH = 100


@dataclass
class DeliveryRun:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def _due(now: dt.datetime) -> Q:
    return Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now) | Q(
        status=DeliveryStatus.SENDING, claimed_at__lt=now - CLAIM_LEASE
    )


def deliveries_claim(*, now: dt.datetime | None = None, limit: int = BATCH) -> list[int]:
    """Mark up to `limit` due rows `sending` for this worker and return their ids."""
    now = now or clock.now()
    if connection.features.has_select_for_update_skip_locked:
        with transaction.atomic():
            ids = list(
                BotDelivery.objects.select_for_update(skip_locked=True)
                .filter(_due(now))
                .order_by("next_attempt_at", "id")
                .values_list("id", flat=True)[:limit]
            )
            BotDelivery.objects.filter(id__in=ids).update(
                status=DeliveryStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1
            )
        return ids
    candidates = list(
        BotDelivery.objects.filter(_due(now))
        .order_by("next_attempt_at", "id")
        .values_list("id", "status", "claimed_at")[:limit]
    )
    claimed = []
    for delivery_id, status, claimed_at in candidates:
        # Only the worker whose UPDATE still finds the row as it read it wins it.
        won = BotDelivery.objects.filter(id=delivery_id, status=status, claimed_at=claimed_at).update(
            status=DeliveryStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1
        )
        if won:
            claimed.append(delivery_id)
    return claimed


def delivery_send(*, delivery_id: int) -> str:
    """Send one claimed row and record the answer; returns its new status."""
    delivery = BotDelivery.objects.select_related("channel").filter(pk=delivery_id).first()
    if delivery is None:
        return "gone"  # its alert or channel was deleted after the claim: nothing to send
    channel = delivery.channel
    url, payload = bots.request_of(
        kind=channel.kind,
        url=channel.webhook_url,
        secret=channel.secret,
        title=delivery.message.get("title", ""),
        text=delivery.message.get("text", ""),
    )
    answer = bots.post(url=url, payload=payload, timeout=settings.SALESLOOP_BOT_TIMEOUT)
    now = clock.now()
    changes: dict[str, Any] = {"response_body": answer.body, "claimed_at": None}
    if answer.ok:
        changes |= {"status": DeliveryStatus.SENT, "sent_at": now, "last_error": ""}
    elif delivery.attempts >= MAX_ATTEMPTS:
        changes |= {"status": DeliveryStatus.FAILED, "last_error": answer.error}
    else:
        changes |= {
            "status": DeliveryStatus.PENDING,
            "last_error": answer.error,
            "next_attempt_at": now + BACKOFF[delivery.attempts - 1],
        }
    # Only the claim's holder records its outcome (a row re-claimed after the lease is not ours).
    BotDelivery.objects.filter(
        pk=delivery.pk, status=DeliveryStatus.SENDING, claimed_at=delivery.claimed_at
    ).update(**changes)
    return str(changes["status"])


def deliveries_deliver(*, now: dt.datetime | None = None, limit: int = BATCH) -> DeliveryRun:
    """One worker's run: claim what is due, send it, record it."""
    run = DeliveryRun()
    ids = deliveries_claim(now=now, limit=limit)
    run.claimed = len(ids)
    for delivery_id in ids:
        status = delivery_send(delivery_id=delivery_id)
        if status == DeliveryStatus.SENT:
            run.sent += 1
        elif status == DeliveryStatus.FAILED:
            run.failed += 1
        elif status == DeliveryStatus.PENDING:
            run.retrying += 1
    return run


def next_due_at() -> dt.datetime | None:
    row = (
        BotDelivery.objects.filter(status=DeliveryStatus.PENDING)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    return row


@transaction.atomic
def delivery_retry(*, actor: Any, delivery: BotDelivery) -> BotDelivery:
    """A failed delivery is tried again now, with a fresh schedule (attempts start over)."""
    delivery = BotDelivery.objects.select_for_update().get(pk=delivery.pk)
    if delivery.status != DeliveryStatus.FAILED:
        raise ValidationError({"status": _("Only a failed delivery can be retried.")})
    before = {"status": delivery.status, "attempts": delivery.attempts, "last_error": delivery.last_error}
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = clock.now()
    delivery.save(update_fields=["status", "attempts", "next_attempt_at"])
    audit_record(
        actor=actor,
        action="notify.delivery_retry",
        target=delivery,
        before=before,
        after={"status": delivery.status, "attempts": 0},
    )
    from salesloop.notify.alerts import delivery_kick_on_commit

    delivery_kick_on_commit()
    return delivery
