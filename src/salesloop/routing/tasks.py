"""Background work of routing (django-tasks): the sandbox's replays (C8.4), too long to run while a
director waits on the page."""

from __future__ import annotations

from django_tasks import task

from salesloop.routing.sandbox import replay_run


@task()
def routing_replay(report_id: int) -> dict[str, int | str]:
    """C8.4(a): replay a pending simulation report's window; its progress (leads_done of
    leads_total) is on the report as it goes. Returns the report's status and lead count."""
    report = replay_run(report_id=report_id)
    return {"status": report.status, "leads": report.leads_done}
