"""The robots' outbox (docs/alerts.md): due rows are claimed, sent, and recorded; a failure is
retried on a fixed schedule (1 min, 5 min, 30 min, 2 h, 12 h) and then marked failed, visible and
retryable by hand.

What is promised: **at most once automatically, and every doubt visible and retryable by a
person.** WeCom group robots and DingTalk custom robots take no idempotency key, so a request that
may have reached the robot can never be sent again safely by a machine: the robot may have posted
it and only the answer got lost. Two cases leave that doubt, and both end `uncertain`, a state no
worker touches again (a person looks at the group and retries, or not):

- the request went out and no answer came (read timeout, connection dropped after sending;
  `bots.post` tells these from failures before sending, which keep the retry schedule);
- a worker died holding a claim: rows left `sending` past `CLAIM_LEASE` are marked `uncertain` at
  the start of every run instead of being claimed again.

Claims are exclusive, so two workers never send one row: PostgreSQL takes the due rows with
`SELECT … FOR UPDATE SKIP LOCKED` and marks them `sending` in that transaction; SQLite (one writer
at a time) marks each row with a conditional UPDATE that only one worker can win. The HTTP request
happens outside any transaction, and its outcome is written only by the claim's holder.
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
ABANDONED_ERROR = "the worker stopped while sending; the group may or may not have received it"


@dataclass
class DeliveryRun:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    uncertain: int = 0  # sent without an answer, or abandoned by a dead worker


def _due(now: dt.datetime) -> Q:
    # Only pending rows: a row once `sending` may have reached the robot and is never taken again.
    return Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)


def deliveries_abandoned_mark(*, now: dt.datetime | None = None) -> int:
    """Rows still `sending` after the lease belong to a worker that died mid-send: the robot may
    have posted them, so they become `uncertain` (for a person) instead of being sent again.

    One conditional UPDATE, so two workers marking at once count each row once (PostgreSQL
    re-checks `status` after waiting for the row lock; SQLite has one writer). `claimed_at` is
    kept: should the worker only have stalled, it may still record the answer it got."""
    now = now or clock.now()
    return BotDelivery.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lt=now - CLAIM_LEASE).update(
        status=DeliveryStatus.UNCERTAIN, last_error=ABANDONED_ERROR
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
        .values_list("id", flat=True)[:limit]
    )
    claimed = []
    for delivery_id in candidates:
        # Only the worker whose UPDATE still finds the row due wins it.
        won = BotDelivery.objects.filter(_due(now), id=delivery_id).update(
            status=DeliveryStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1
        )
        if won:
            claimed.append(delivery_id)
    return claimed


def delivery_send(*, delivery_id: int) -> str:
    """Send one claimed row and record the answer; returns its new status. A definite failure is
    retried on the schedule; a request sent without an answer is `uncertain`, never retried here."""
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
    elif answer.uncertain:
        changes |= {
            "status": DeliveryStatus.UNCERTAIN,
            "last_error": f"{answer.error} (the group may or may not have received it)",
        }
    elif delivery.attempts >= MAX_ATTEMPTS:
        changes |= {"status": DeliveryStatus.FAILED, "last_error": answer.error}
    else:
        changes |= {
            "status": DeliveryStatus.PENDING,
            "last_error": answer.error,
            "next_attempt_at": now + BACKOFF[delivery.attempts - 1],
        }
    # Only the claim's holder records its outcome. A row marked `uncertain` after the lease while
    # this worker was stalled still carries our claim: what the robot answered is better than a
    # doubt. A row a person retried since has a new claim (or none) and is not ours.
    BotDelivery.objects.filter(
        pk=delivery.pk,
        status__in=(DeliveryStatus.SENDING, DeliveryStatus.UNCERTAIN),
        claimed_at=delivery.claimed_at,
    ).update(**changes)
    return str(changes["status"])


def deliveries_deliver(*, now: dt.datetime | None = None, limit: int = BATCH) -> DeliveryRun:
    """One worker's run: give up on dead workers' claims, claim what is due, send it, record it."""
    run = DeliveryRun()
    run.uncertain = deliveries_abandoned_mark(now=now)
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
        elif status == DeliveryStatus.UNCERTAIN:
            run.uncertain += 1
    return run


def next_due_at() -> dt.datetime | None:
    row = (
        BotDelivery.objects.filter(status=DeliveryStatus.PENDING)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    return row


RETRYABLE = (DeliveryStatus.FAILED, DeliveryStatus.UNCERTAIN)


@transaction.atomic
def delivery_retry(*, actor: Any, delivery: BotDelivery) -> BotDelivery:
    """A failed or uncertain delivery is tried again now, with a fresh schedule (attempts start
    over). For an uncertain one this is the person's call, made after looking at the group: the
    machine never sends a message that may already be there."""
    delivery = BotDelivery.objects.select_for_update().get(pk=delivery.pk)
    if delivery.status not in RETRYABLE:
        raise ValidationError(
            {"status": _("Only a failed delivery or one whose outcome is unknown can be retried.")}
        )
    before = {"status": delivery.status, "attempts": delivery.attempts, "last_error": delivery.last_error}
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = clock.now()
    # Drops an abandoned claim: the stalled worker, should it wake, must not overwrite the retry.
    delivery.claimed_at = None
    delivery.save(update_fields=["status", "attempts", "next_attempt_at", "claimed_at"])
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
