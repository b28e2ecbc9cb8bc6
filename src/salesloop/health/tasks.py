"""Background work of the health score (django-tasks): the daily recompute, so scores decay with
time even when nothing happens (SPEC C3.2). Schedule it once a day (e.g. cron running
`salesloop health_recompute`, or enqueue this task)."""

from __future__ import annotations

from django_tasks import task

from salesloop.health.services import leads_recompute


@task()
def health_recompute_daily() -> dict[str, int]:
    """Every open lead's score at this moment; crossings into red are notified once."""
    outcome = leads_recompute()
    return {
        "leads": outcome.leads,
        "scored": outcome.scored,
        "changed": outcome.changed,
        "crossed": outcome.crossed,
    }
