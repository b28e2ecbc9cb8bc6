"""Reads of imports: which jobs a user sees, and the rejected-rows report."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from salesloop.core.roles import Role, is_admin
from salesloop.intake.imports.models import ImportJob, ImportRejectedRow

REPORT_REASON_HEADER = "原因"
REPORT_ROW_HEADER = "原行号"


def jobs_visible_to(user: Any) -> QuerySet[ImportJob]:
    """Its uploader sees a job; so do directors and administrators. An import holds a file full of
    personal data, so other managers — even of the regions it fills — do not."""
    if is_admin(user) or user.role == Role.DIRECTOR:
        return ImportJob.objects.all()
    return ImportJob.objects.filter(created_by_id=user.pk)


def job_get(*, user: Any, job_id: int) -> ImportJob:
    job = jobs_visible_to(user).select_related("created_by").filter(pk=job_id).first()
    if job is None:
        raise Http404("import not found")
    return job


def preview_phones_visible(*, user: Any, job: ImportJob) -> bool:
    """A preview shows phones unmasked to the uploader (it is their file) and administrators; a
    director reviewing someone else's import sees them masked, as everywhere else."""
    return job.created_by_id == user.pk or is_admin(user)


def jobs_recent(*, user: Any, limit: int = 20) -> list[ImportJob]:
    return list(jobs_visible_to(user).select_related("created_by").order_by("-id")[:limit])


def rejected_rows_first(*, job: ImportJob, limit: int = 20) -> list[ImportRejectedRow]:
    return list(ImportRejectedRow.objects.filter(job=job).order_by("row_number")[:limit])


class _Echo:
    """A file-like object whose write returns the text, so csv.writer can feed a streaming response."""

    def write(self, value: str) -> str:
        return value


def rejected_report_lines(*, job: ImportJob) -> Iterator[str]:
    """The rejected rows as CSV text: the file's own columns, then 原因 and the original row number.
    UTF-8 with a BOM, so Excel on a Chinese Windows opens it without garbling; fixed rows can be
    imported again as they are (the two extra columns are not mapped)."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow([*job.headers, REPORT_REASON_HEADER, REPORT_ROW_HEADER])
    rows = (
        ImportRejectedRow.objects.filter(job=job)
        .order_by("row_number")
        .values_list("row_number", "raw", "reason")
        .iterator(chunk_size=2000)
    )
    for row_number, raw, reason in rows:
        yield writer.writerow([*raw, reason, row_number])
