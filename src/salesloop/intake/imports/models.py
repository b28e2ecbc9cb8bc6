"""An import job and the rows it refused (SPEC C1.5).

Rejected rows are stored as records, not appended to a report file while the job runs: they are
written in the same transaction as the chunk they belong to, so a job resumed after a crash never
reports a row twice or loses one, and the page can show the first reasons without reading a file.
The downloadable report (original columns plus 原因) is streamed from these rows on request.
Rejects are the exception (a few per cent of a file), so the table stays small.
"""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from salesloop.core import clock
from salesloop.core.models import BaseModel


class ImportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    XLSX = "xlsx", "Excel (.xlsx)"
    XLS = "xls", "Excel 97–2003 (.xls)"


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", _("Uploaded")
    PREVIEWED = "previewed", _("Previewed")
    QUEUED = "queued", _("Waiting for a worker")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


def import_upload_path(instance: Any, filename: str) -> str:
    """Uploaded files live under MEDIA_ROOT/imports/ by month, under a random name: the user's
    file name is kept on the job, never used as a path."""
    suffix = PurePosixPath(filename).suffix.lower()[:6]
    return f"imports/{clock.now():%Y/%m}/{uuid.uuid4().hex}{suffix}"


class ImportJob(BaseModel):
    """One uploaded file and its import: how it is read, how its columns map onto lead fields,
    where the run stands and what it did. Counts add up: created + touches + duplicates_in_file +
    rejected = rows_done."""

    file = models.FileField(upload_to=import_upload_path, max_length=300)
    original_name = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField(default=0)
    format = models.CharField(max_length=10, choices=ImportFormat.choices)
    encoding = models.CharField(
        max_length=20,
        blank=True,
        default="",
        help_text="utf-8, utf-8-sig, gb18030 or utf-16; empty for a workbook",
    )
    delimiter = models.CharField(max_length=1, blank=True, default="", help_text="CSV only")
    header_row = models.PositiveIntegerField(default=1, help_text="the file's row that holds the headers")
    headers = models.JSONField(default=list, blank=True)
    mapping = models.JSONField(
        default=list, blank=True, help_text="one lead field per column, in column order; '' ignores it"
    )
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.UPLOADED)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0, help_text="new leads")
    touches = models.PositiveIntegerField(default=0, help_text="rows of people already known: 回流")
    duplicates_in_file = models.PositiveIntegerField(
        default=0, help_text="later rows of a person seen earlier"
    )
    rejected = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["created_by", "-id"], name="import_job_creator_idx")]
        verbose_name = _("Import")
        verbose_name_plural = _("Imports")

    def __str__(self) -> str:
        return f"{self.original_name} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {ImportStatus.DONE, ImportStatus.FAILED}

    @property
    def progress_percent(self) -> int:
        if self.status == ImportStatus.DONE:
            return 100
        if not self.rows_total:
            return 0
        return min(100, self.rows_done * 100 // self.rows_total)


class ImportRejectedRow(models.Model):
    """A row the import refused, with the cells as read and the reason in words a user can act on."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="rejected_rows")
    row_number = models.PositiveIntegerField(help_text="the row as a spreadsheet numbers it (headers = 1)")
    raw = models.JSONField(help_text="the row's cells, in column order")
    reason = models.TextField()

    class Meta:
        ordering = ["job", "row_number"]
        constraints = [
            models.UniqueConstraint(fields=["job", "row_number"], name="import_rejected_once_per_row")
        ]
        verbose_name = _("Rejected import row")
        verbose_name_plural = _("Rejected import rows")

    def __str__(self) -> str:
        return f"{self.job_id}#{self.row_number}: {self.reason}"
