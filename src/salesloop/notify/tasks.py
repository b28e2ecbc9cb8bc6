"""Background work of the alerts (django-tasks): deliver the robots' outbox. A new alert starts a
run at once (after its commit); a run that leaves retries behind schedules the next one for the
first of them when the backend can defer (the database backend can). Running
`salesloop bots_deliver` from cron every minute is the belt to these braces."""

from __future__ import annotations

from django_tasks import task

from salesloop.notify.outbox import deliveries_deliver, next_due_at


@task()
def bots_deliver() -> dict[str, int]:
    run = deliveries_deliver()
    # Only a run that claimed something schedules the next one: a retry left pending was put there
    # by a run that claimed it, so every pending row has a follower, and runs started together
    # (several alerts' kicks) do not each start a chain of their own.
    due = next_due_at() if run.claimed else None
    if due is not None and bots_deliver.get_backend().supports_defer:
        bots_deliver.using(run_after=due).enqueue()
    return {
        "claimed": run.claimed,
        "sent": run.sent,
        "retrying": run.retrying,
        "failed": run.failed,
        "uncertain": run.uncertain,
    }
