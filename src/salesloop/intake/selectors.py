"""Reads of intake: events (the dead-letter list), per-source counts, the duplicate-rate report."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.http import Http404

from salesloop.core import clock
from salesloop.core.roles import Role, sees_all
from salesloop.crm.selectors import Page, keyset_page, leads_visible_to
from salesloop.intake.models import EventStatus, InboundEvent, MergeSuggestion, Source


def events_visible_to(user: Any) -> QuerySet[InboundEvent]:
    """Directors, product managers and admins see every inbound event (failed ones carry no lead);
    a manager sees the events of leads in their scope; a rep none."""
    events = InboundEvent.objects.all()
    if sees_all(user):
        return events
    if user.role == Role.MANAGER:
        return events.filter(lead__in=leads_visible_to(user))
    return events.none()


def event_list(
    *, user: Any, status: str | None, source_id: int | None, cursor: str | None, limit: int
) -> Page:
    events = events_visible_to(user).select_related("source")
    if status:
        events = events.filter(status=status)
    if source_id:
        events = events.filter(source_id=source_id)
    return keyset_page(events, cursor=cursor, limit=limit)


def event_get(*, user: Any, event_id: int) -> InboundEvent:
    event = events_visible_to(user).select_related("source").filter(pk=event_id).first()
    if event is None:
        raise Http404("event not found")
    return event


def sources_visible_to(user: Any) -> QuerySet[Source]:
    return Source.objects.all() if sees_all(user) or user.role == Role.MANAGER else Source.objects.none()


def source_get(*, user: Any, source_id: int) -> Source:
    source = sources_visible_to(user).filter(pk=source_id).first()
    if source is None:
        raise Http404("source not found")
    return source


@dataclass
class SourceCounts:
    source: Source
    today: dict[str, int]
    days30: dict[str, int]


def source_counts(*, user: Any) -> list[SourceCounts]:
    """C1.7: per source, received / created / touches / failed, today (org time zone) and over 30 days.
    One grouped query, whatever the number of events."""
    now = clock.now()
    today_start = dt.datetime.combine(clock.today_local(), dt.time.min, tzinfo=clock.org_tz())
    since30 = now - dt.timedelta(days=30)
    statuses = {"created": EventStatus.CREATED, "touch": EventStatus.TOUCH, "failed": EventStatus.FAILED}
    aggregates: dict[str, Any] = {}
    for window, start in (("today", today_start), ("days30", since30)):
        aggregates[f"{window}__received"] = Count("id", filter=Q(received_at__gte=start))
        for name, status in statuses.items():
            aggregates[f"{window}__{name}"] = Count("id", filter=Q(received_at__gte=start, status=status))
    rows = {
        row["source_id"]: row
        for row in InboundEvent.objects.filter(received_at__gte=min(since30, today_start))
        .values("source_id")
        .annotate(**aggregates)
        .order_by()
    }
    result = []
    for source in sources_visible_to(user).order_by("id"):
        row = rows.get(source.pk, {})
        result.append(
            SourceCounts(
                source=source,
                today={k.split("__")[1]: row.get(k, 0) for k in aggregates if k.startswith("today__")},
                days30={k.split("__")[1]: row.get(k, 0) for k in aggregates if k.startswith("days30__")},
            )
        )
    return result


@dataclass
class DuplicateRow:
    source_id: int
    source_name: str
    campaign: str
    received: int
    created: int
    touches: int
    failed: int

    @property
    def duplicate_rate(self) -> float:
        """Share of processed arrivals that were people already known (回流)."""
        processed = self.created + self.touches
        return round(self.touches / processed, 4) if processed else 0.0


def duplicate_report(*, user: Any, since: dt.datetime, until: dt.datetime) -> list[DuplicateRow]:
    """C1.4: duplicate rate per source and campaign — the 82% kind of problem at a glance."""
    visible = sources_visible_to(user).values_list("id", flat=True)
    rows = (
        InboundEvent.objects.filter(received_at__gte=since, received_at__lt=until, source_id__in=visible)
        .values("source_id", "source__name", "campaign")
        .annotate(
            received=Count("id"),
            created=Count("id", filter=Q(status=EventStatus.CREATED)),
            touches=Count("id", filter=Q(status=EventStatus.TOUCH)),
            failed=Count("id", filter=Q(status=EventStatus.FAILED)),
        )
        .order_by("source_id", "campaign")
    )
    report = [
        DuplicateRow(
            source_id=r["source_id"],
            source_name=r["source__name"],
            campaign=r["campaign"],
            received=r["received"],
            created=r["created"],
            touches=r["touches"],
            failed=r["failed"],
        )
        for r in rows
    ]
    return sorted(report, key=lambda r: (-r.duplicate_rate, r.source_id, r.campaign))


def merge_suggestions(*, user: Any, cursor: str | None, limit: int) -> Page:
    visible = leads_visible_to(user)
    suggestions = MergeSuggestion.objects.filter(
        status=MergeSuggestion.Status.OPEN, lead__in=visible, candidate__in=visible
    ).select_related("lead", "candidate", "lead__contact", "candidate__contact")
    return keyset_page(suggestions, cursor=cursor, limit=limit)


def lead_arrivals(*, lead: Any) -> list[InboundEvent]:
    """Arrivals of a lead and of the leads merged into it, oldest first (the lead is already scoped)."""
    return list(
        InboundEvent.objects.filter(Q(lead_id=lead.pk) | Q(lead__merged_into_id=lead.pk))
        .select_related("source")
        .order_by("received_at", "id")
    )
