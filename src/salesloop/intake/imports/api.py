"""REST endpoints of imports (SPEC C1.5), mounted at `/api/v1/imports`.

    POST /imports                 multipart: file, optional mapping (JSON), dry_run → 201 job + preview
    POST /imports/{id}/start      optional {"mapping": ...} → 202 job (queued)
    GET  /imports                 recent jobs
    GET  /imports/{id}            status, progress, counts, report URL (and the preview until started)
    GET  /imports/{id}/rejected.csv

Without `dry_run` the import starts at once; with it the job waits, previewed, for `/start`
(possibly with a corrected mapping). A file that cannot be imported is answered with a 4xx naming
the problem: 413 too large, 415 not CSV/XLSX, 400 unreadable (empty, wrong encoding), 422 nothing
to identify people by.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import quote

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, StreamingHttpResponse
from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import Field

from salesloop.core.audit import personal_data_access_record
from salesloop.core.roles import mask_phone
from salesloop.core.schemas import RecordId
from salesloop.intake.imports import selectors, services
from salesloop.intake.imports.files import ImportFileError
from salesloop.intake.imports.mapping import FIELDS, mapping_problem
from salesloop.intake.imports.models import ImportJob, ImportStatus

router = Router()


class ProblemOut(Schema):
    detail: list[dict[str, Any]]


class PreviewRowOut(Schema):
    row_number: int
    outcome: str = Field(
        description="new | touch (a known person: 回流) | duplicate (within the file) | rejected"
    )
    reason: str = Field(description="why a row is rejected")
    name: str | None
    phone: str | None
    email: str | None
    company: str | None
    province: str | None
    city: str | None
    lead_id: int | None = Field(description="the existing lead a touch or duplicate lands on")


class ImportJobOut(Schema):
    id: int
    status: str
    original_name: str
    format: str
    encoding: str
    delimiter: str
    header_row: int
    headers: list[str]
    mapping: list[str] = Field(description="one field per column, in column order; '' = not imported")
    mapping_problem: str | None
    fields: dict[str, str] = Field(description="the fields a column can be mapped to, with their labels")
    rows_total: int
    rows_done: int
    progress_percent: int
    created: int
    touches: int
    duplicates_in_file: int
    rejected: int
    created_by_id: int | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str
    report_url: str | None
    preview: list[PreviewRowOut] | None = Field(
        description="the first rows and their outcome, until the run starts"
    )


class StartIn(Schema):
    mapping: list[str] | dict[str, str] | None = None


def _report_url(job: ImportJob) -> str | None:
    return f"/api/v1/imports/{job.pk}/rejected.csv" if job.rejected else None


def job_out(job: ImportJob, *, viewer: Any = None) -> dict[str, Any]:
    """The job; with a `viewer`, and until the run starts, its preview (phones masked unless
    the viewer uploaded the file or administers)."""
    preview = None
    if viewer is not None and job.status in {ImportStatus.UPLOADED, ImportStatus.PREVIEWED}:
        unmasked = selectors.preview_phones_visible(user=viewer, job=job)
        preview = [
            {
                "row_number": row.row_number,
                "outcome": row.outcome,
                "reason": row.reason,
                "name": row.candidate.name if row.candidate else None,
                "phone": (row.candidate.phone if unmasked else mask_phone(row.candidate.phone))
                if row.candidate
                else None,
                "email": row.candidate.email if row.candidate else None,
                "company": row.candidate.company if row.candidate else None,
                "province": row.candidate.province_code if row.candidate else None,
                "city": row.candidate.city if row.candidate else None,
                "lead_id": row.lead_id,
            }
            for row in services.import_preview(job=job)
        ]
    return {
        "id": job.pk,
        "status": job.status,
        "original_name": job.original_name,
        "format": job.format,
        "encoding": job.encoding,
        "delimiter": job.delimiter,
        "header_row": job.header_row,
        "headers": job.headers,
        "mapping": job.mapping,
        "mapping_problem": mapping_problem(job.mapping),
        "fields": FIELDS,
        "rows_total": job.rows_total,
        "rows_done": job.rows_done,
        "progress_percent": job.progress_percent,
        "created": job.created,
        "touches": job.touches,
        "duplicates_in_file": job.duplicates_in_file,
        "rejected": job.rejected,
        "created_by_id": job.created_by_id,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "error": job.error,
        "report_url": _report_url(job),
        "preview": preview,
    }


def _problem(field: str, message: str) -> dict[str, Any]:
    return {"detail": [{"loc": ["body", field], "msg": message}]}


@router.post(
    "",
    response={201: ImportJobOut, 400: ProblemOut, 413: ProblemOut, 415: ProblemOut, 422: ProblemOut},
    summary="Upload a CSV or XLSX file of leads (regional managers, directors, admins)",
)
def import_create(
    request: HttpRequest,
    file: File[UploadedFile],
    mapping: Form[str | None] = None,
    dry_run: Form[bool] = False,
) -> Status[dict[str, Any]]:
    actor = request.auth  # type: ignore[attr-defined]
    if not services.may_import(actor):
        raise PermissionDenied("regional managers, directors and administrators import leads")
    given: Any = None
    if mapping:
        try:
            given = json.loads(mapping)
        except ValueError as exc:
            return Status(422, _problem("mapping", f"not JSON: {exc}"))
    try:
        job = services.import_job_create(
            actor=actor, upload=file, name=file.name or "import", mapping=given, require_identity=not dry_run
        )
    except ImportFileError as exc:
        return Status(exc.status, _problem("file", str(exc)))
    except ValidationError as exc:
        return Status(422, _problem("mapping", " ".join(exc.messages)))
    if not dry_run:
        job = services.import_start(actor=actor, job=job)
    return Status(201, job_out(job, viewer=actor))


@router.get("", response=list[ImportJobOut], summary="Recent imports you may see")
def import_list(request: HttpRequest) -> list[dict[str, Any]]:
    return [job_out(job) for job in selectors.jobs_recent(user=request.auth)]  # type: ignore[attr-defined]


@router.get("/{job_id}", response=ImportJobOut, summary="An import: status, progress, counts, report")
def import_detail(request: HttpRequest, job_id: RecordId) -> dict[str, Any]:
    job = selectors.job_get(user=request.auth, job_id=job_id)  # type: ignore[attr-defined]
    return job_out(job, viewer=request.auth)  # type: ignore[attr-defined]


@router.post(
    "/{job_id}/start", response={202: ImportJobOut, 422: ProblemOut}, summary="Start (or resume) an import"
)
def import_start(
    request: HttpRequest, job_id: RecordId, payload: StartIn | None = None
) -> Status[dict[str, Any]]:
    job = selectors.job_get(user=request.auth, job_id=job_id)  # type: ignore[attr-defined]
    mapping = payload.mapping if payload is not None else None
    job = services.import_start(actor=request.auth, job=job, mapping=mapping)  # type: ignore[attr-defined]
    return Status(202, job_out(job))


@router.get("/{job_id}/rejected.csv", summary="The rejected rows with their reasons (CSV, UTF-8 with BOM)")
def import_rejected_csv(request: HttpRequest, job_id: RecordId) -> StreamingHttpResponse:
    job = selectors.job_get(user=request.auth, job_id=job_id)  # type: ignore[attr-defined]
    return rejected_report_response(request.auth, job, channel="api")  # type: ignore[attr-defined]


def rejected_report_response(user: Any, job: ImportJob, *, channel: str) -> StreamingHttpResponse:
    """The report as a download; an export of personal data, so it is logged (PIPL)."""
    personal_data_access_record(
        actor=user, subject=job, fields=["rejected_rows"], channel=channel, kind="export"
    )
    response = StreamingHttpResponse(
        selectors.rejected_report_lines(job=job), content_type="text/csv; charset=utf-8"
    )
    stem = job.original_name.rsplit(".", 1)[0] or "import"
    response["Content-Disposition"] = (
        f"attachment; filename=\"import-{job.pk}-rejected.csv\"; filename*=UTF-8''{quote(stem)}-rejected.csv"
    )
    return response
