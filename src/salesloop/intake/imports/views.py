"""Import pages (SPEC C1.5): upload and recent jobs; one job's mapping, preview, progress and report.

Views are thin (STYLE.md 2): the same services and selectors as the API. The progress fragment
polls itself every second with htmx while the job is queued or running and is swapped for a
fragment without the trigger when it ends, which stops the polling.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from salesloop.accounts.geography import PROVINCE_NAME_BY_CODE
from salesloop.core.roles import mask_phone
from salesloop.intake.imports import selectors, services
from salesloop.intake.imports.api import rejected_report_response
from salesloop.intake.imports.files import ImportFileError, rows_head
from salesloop.intake.imports.mapping import FIELDS, mapping_problem
from salesloop.intake.imports.models import ImportJob, ImportStatus

OUTCOME_LABELS = {
    "new": gettext_lazy("New lead"),
    "touch": gettext_lazy("Touch: a known person"),
    "duplicate": gettext_lazy("Duplicate in the file"),
    "rejected": gettext_lazy("Rejected"),
}


def _require_importer(request: HttpRequest) -> None:
    if not services.may_import(request.user):
        raise PermissionDenied("regional managers, directors and administrators import leads")


@dataclass(frozen=True)
class PreviewLine:
    row_number: int
    outcome: str
    outcome_label: Any
    reason: str
    name: str
    phone: str
    email: str
    company: str
    place: str
    lead_id: int | None


@dataclass(frozen=True)
class MappingColumn:
    index: int
    header: str
    field: str
    sample: str


def _preview_lines(user: Any, job: ImportJob) -> list[PreviewLine]:
    unmasked = selectors.preview_phones_visible(user=user, job=job)
    lines = []
    for row in services.import_preview(job=job):
        candidate = row.candidate
        phone = candidate.phone if candidate else ""
        place = ""
        if candidate is not None:
            province = PROVINCE_NAME_BY_CODE.get(candidate.province_code or "", "")
            place = " ".join(part for part in (province, candidate.city) if part)
        lines.append(
            PreviewLine(
                row_number=row.row_number,
                outcome=row.outcome,
                outcome_label=OUTCOME_LABELS[row.outcome],
                reason=row.reason,
                name=candidate.name if candidate else "",
                phone=phone if unmasked else mask_phone(phone),
                email=candidate.email if candidate else "",
                company=candidate.company if candidate else "",
                place=place,
                lead_id=row.lead_id,
            )
        )
    return lines


def _detail_context(request: HttpRequest, job: ImportJob) -> dict[str, Any]:
    editable = job.status in {ImportStatus.UPLOADED, ImportStatus.PREVIEWED} and not job.rows_done
    preview = _preview_lines(request.user, job) if editable else []
    samples: dict[int, str] = {}
    if editable:
        for _, cells in rows_head(Path(job.file.path), job, 3):
            for index, cell in enumerate(cells):
                if cell.strip() and index not in samples:
                    samples[index] = cell.strip()[:40]
    columns = [
        MappingColumn(
            index=i,
            header=header,
            field=job.mapping[i] if i < len(job.mapping) else "",
            sample=samples.get(i, ""),
        )
        for i, header in enumerate(job.headers)
    ]
    return {
        "job": job,
        "editable": editable,
        "columns": columns,
        "fields": FIELDS,
        "mapping_problem": mapping_problem(job.mapping),
        "preview": preview,
        "rejected_first": _rejected_first(job),
        "startable": job.status in services.STARTABLE,
    }


def _rejected_first(job: ImportJob) -> list[Any]:
    return selectors.rejected_rows_first(job=job) if job.rejected and job.is_finished else []


@login_required
@require_http_methods(["GET", "POST"])
def import_list_page(request: HttpRequest) -> HttpResponse:
    _require_importer(request)
    error = ""
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            error = "请选择要导入的 CSV 或 Excel 文件"
        else:
            try:
                job = services.import_job_create(
                    actor=request.user, upload=upload, name=upload.name or "import"
                )  # type: ignore[arg-type]
            except ImportFileError as exc:
                error = str(exc)
            else:
                return redirect("import-detail", job_id=job.pk)
    return render(
        request,
        "intake/imports/list.html",
        {"jobs": selectors.jobs_recent(user=request.user), "error": error},
        status=422 if error else 200,
    )


@login_required
@require_GET
def import_detail_page(request: HttpRequest, job_id: int) -> HttpResponse:
    _require_importer(request)
    job = selectors.job_get(user=request.user, job_id=job_id)
    return render(request, "intake/imports/detail.html", _detail_context(request, job))


@login_required
@require_POST
def import_mapping_page(request: HttpRequest, job_id: int) -> HttpResponse:
    """Save the mapping editor's choices; the page (or, with htmx, its preview) shows the result."""
    _require_importer(request)
    job = selectors.job_get(user=request.user, job_id=job_id)
    mapping = [request.POST.get(f"column-{i}", "") for i in range(len(job.headers))]
    problem = ""
    try:
        job = services.import_mapping_set(actor=request.user, job=job, mapping=mapping)  # type: ignore[arg-type]
    except ValidationError as exc:
        problem = " ".join(exc.messages)
    if getattr(request, "htmx", False):
        context = {**_detail_context(request, job), "mapping_error": problem}
        return render(request, "intake/imports/_setup.html", context, status=422 if problem else 200)
    if problem:
        messages.error(request, problem)
    return redirect("import-detail", job_id=job.pk)


@login_required
@require_POST
def import_start_page(request: HttpRequest, job_id: int) -> HttpResponse:
    _require_importer(request)
    job = selectors.job_get(user=request.user, job_id=job_id)
    try:
        services.import_start(actor=request.user, job=job)  # type: ignore[arg-type]
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("import-detail", job_id=job.pk)


@login_required
@require_GET
def import_progress_fragment(request: HttpRequest, job_id: int) -> HttpResponse:
    """Polled every second while the job is queued or running; once it has ended the fragment comes
    back without its trigger (and with the counts and the first rejected rows), so polling stops."""
    _require_importer(request)
    job = selectors.job_get(user=request.user, job_id=job_id)
    context = {
        "job": job,
        "rejected_first": _rejected_first(job),
        "startable": job.status in services.STARTABLE,
    }
    return render(request, "intake/imports/_progress.html", context)


@login_required
@require_GET
def import_report_download(request: HttpRequest, job_id: int) -> StreamingHttpResponse:
    _require_importer(request)
    job = selectors.job_get(user=request.user, job_id=job_id)
    return rejected_report_response(request.user, job, channel="page")
