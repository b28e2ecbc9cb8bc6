"""Background work of imports (Django's tasks API via django-tasks)."""

from __future__ import annotations

from django_tasks import task

from salesloop.intake.imports.services import import_run


@task()
def import_run_task(job_id: int) -> dict[str, int | str]:
    """Run an import job; its progress is on the job as it goes. Returns the job's counts."""
    job = import_run(job_id=job_id)
    return {
        "status": job.status,
        "rows_done": job.rows_done,
        "created": job.created,
        "touches": job.touches,
        "duplicates_in_file": job.duplicates_in_file,
        "rejected": job.rejected,
    }
