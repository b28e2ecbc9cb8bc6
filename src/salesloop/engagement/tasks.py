"""Background work of engagement (django-tasks)."""

from __future__ import annotations

from django_tasks import task

from salesloop.engagement.checkin_services import checkins_remind


@task()
def checkin_remind_due() -> int:
    """C4.1: the daily check-in reminder; safe to enqueue as often as wanted (once per rep and day)."""
    return checkins_remind()
