"""Facts for the health tests, written straight to the engagement tables (as the engagement
services save them) so each test states exactly what the customer did and when."""

from __future__ import annotations

import datetime as dt

import pytest

from salesloop.core import clock
from salesloop.crm.models import Attachment, Lead
from salesloop.engagement.models import BudgetMilestone, DocumentView, Meeting, Touch, TrackedDocument

NOW = dt.datetime(2026, 11, 28, 4, 0, tzinfo=dt.UTC)


@pytest.fixture
def now():
    clock.set_now(NOW)
    return NOW


def touch(lead: Lead, *, days_ago: float = 0, direction: str = "outbound", responded=None, initiated=False):
    return Touch.objects.create(
        lead=lead,
        kind="call",
        direction=direction,
        responded=responded,
        customer_initiated=initiated,
        at=clock.now() - dt.timedelta(days=days_ago),
    )


def view(lead: Lead, *, seconds: int, days_ago: float = 0):
    attachment = Attachment.objects.create(
        lead=lead, kind="proposal", title="方案", url="https://example.com/p"
    )
    document = TrackedDocument.objects.create(
        attachment=attachment, lead=lead, token=f"t{attachment.pk:040d}"
    )
    at = clock.now() - dt.timedelta(days=days_ago)
    return DocumentView.objects.create(
        document=document,
        lead=lead,
        view_key=f"v{attachment.pk:040d}",
        opened_at=at,
        last_beat_at=at,
        seconds=seconds,
    )


def meeting(
    lead: Lead, *, status: str = "attended", minutes: int | None = 60, planned: int = 60, days_ago: float = 0
):
    return Meeting.objects.create(
        lead=lead,
        title="方案交流会",
        scheduled_at=clock.now() - dt.timedelta(days=days_ago),
        planned_minutes=planned,
        status=status,
        attended_minutes=minutes if status == "attended" else None,
    )


def budget(lead: Lead, stage: str, *, days_ago: float = 0):
    return BudgetMilestone.objects.create(
        lead=lead, stage=stage, at=clock.now() - dt.timedelta(days=days_ago)
    )


def healthy(lead: Lead) -> None:
    """Facts worth 60: full contact frequency, two attended meetings, an approved budget."""
    for _ in range(8):
        touch(lead)
    meeting(lead)
    meeting(lead)
    budget(lead, "approved")
