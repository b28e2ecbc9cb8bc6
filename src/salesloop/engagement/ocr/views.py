"""Evidence OCR pages (issue 6 item 3): the OCR fragment beside an attachment (polled while the text is
being read), retrying a failed reading, and the evidence search page. Thin: scope with the selectors
(404 out of scope), call the services, render."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from salesloop.crm.selectors import FilterError, lead_editable
from salesloop.engagement.ocr import selectors, services
from salesloop.engagement.ocr.api import snippet
from salesloop.engagement.ocr.models import EvidenceText
from salesloop.engagement.ocr.search import MAX_QUERY


def _row(request: HttpRequest, lead_id: int, attachment_id: int) -> EvidenceText:
    row = selectors.evidence_text_get(user=request.user, attachment_id=attachment_id)
    if row.lead_id != lead_id:
        raise Http404("attachment not found")
    return row


def _fragment(request: HttpRequest, row: EvidenceText, status: int = 200) -> HttpResponse:
    return render(
        request,
        "engagement/ocr/_attachment_ocr.html",
        {
            "attachment": row.attachment,
            "ocr": selectors.evidence_for_viewer(user=request.user, row=row),
            "lead": row.lead,
            "editable": lead_editable(user=request.user, lead=row.lead),
        },
        status=status,
    )


@login_required
@require_GET
def attachment_ocr_fragment(request: HttpRequest, lead_id: int, attachment_id: int) -> HttpResponse:
    return _fragment(request, _row(request, lead_id, attachment_id))


@login_required
@require_POST
def attachment_ocr_retry_page(request: HttpRequest, lead_id: int, attachment_id: int) -> HttpResponse:
    row = _row(request, lead_id, attachment_id)
    status = 200
    try:
        services.evidence_text_retry(actor=request.user, row=row)
    except PermissionDenied:
        raise Http404("attachment not found") from None
    except ValidationError:
        status = 422  # read meanwhile: the fragment shows where it stands
    if not getattr(request, "htmx", False):
        return redirect("lead-detail", lead_id=lead_id)
    return _fragment(request, _row(request, lead_id, attachment_id), status=status)


@login_required
@require_GET
def evidence_search_page(request: HttpRequest) -> HttpResponse:
    """Search OCR'd evidence text of the leads in scope; phone numbers in the snippets are masked
    (a list, like every list of personal data)."""
    query = request.GET.get("q", "").strip()[:MAX_QUERY]
    cursor = request.GET.get("cursor") or None
    hits, next_cursor, problem = [], None, ""
    if query:
        try:
            page = selectors.evidence_search(
                user=request.user, query=query, cursor=cursor, limit=settings.SALESLOOP_PAGE_SIZE
            )
        except FilterError as exc:
            problem = str(exc)
        else:
            next_cursor = page.next_cursor
            hits = [
                {"row": row, "snippet": snippet(selectors.evidence_masked(row, unmasked=False).text, query)}
                for row in page.items
            ]
    return render(
        request,
        "engagement/ocr/search.html",
        {"query": query, "hits": hits, "next_cursor": next_cursor, "problem": problem},
        status=422 if problem else 200,
    )
