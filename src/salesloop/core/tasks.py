from __future__ import annotations

from pathlib import Path

from django_tasks import task

from salesloop.core import clock


@task()
def touch_file(path: str) -> str:
    """Writes the time into a file: the smallest real task, used to check a deployment's worker
    (`salesloop shell -c "from salesloop.core.tasks import touch_file; touch_file.enqueue('/tmp/x')"`)."""
    Path(path).write_text(clock.now().isoformat())
    return path
