"""Evidence OCR by API (issue 6 item 3): an attachment's OCR result, retrying a failed reading, and
the search over OCR'd text. Thin: scope with the selectors (404 out of scope), call the services."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from salesloop.core.schemas import RecordId, Text
from salesloop.crm.selectors import FilterError
from salesloop.engagement.ocr import selectors, services
from salesloop.engagement.ocr.models import EvidenceText
from salesloop.engagement.ocr.search import MAX_QUERY

router = Router()  # mounted at the API root


class OcrLineOut(Schema):
    page: int
    text: str
    box: list[list[int]]
    score: float


class EvidenceTextOut(Schema):
    attachment_id: int
    lead_id: int
    kind: str
    status: str = Field(description="pending | done | failed | skipped")
    reason: str = Field(description="why it failed or was skipped; a note when pages were left out")
    engine: str
    pages: int
    text: str
    lines: list[OcrLineOut]
    facts: dict[str, list[dict[str, Any]]] = Field(
        description="companies, amounts (yuan, decimal string), dates (ISO), phones (E.164, masked for "
        "roles that do not see personal data); each with text, line, confidence"
    )
    signed: bool | None = Field(description="null: not a signature page")
    signed_explanation: dict[str, Any] | None
    company_mismatch: bool
    mismatch_explanation: dict[str, Any] | None
    attempts: int
    seconds: float
    read_at: dt.datetime | None


class EvidenceHitOut(Schema):
    attachment_id: int
    lead_id: int
    lead_title: str
    customer: str
    kind: str
    title: str
    snippet: str = Field(description="the OCR'd line(s) holding the query")
    signed: bool | None
    company_mismatch: bool


class EvidencePage(Schema):
    items: list[EvidenceHitOut]
    next_cursor: str | None


class EvidenceQuery(Schema):
    q: Text(MAX_QUERY)  # type: ignore[valid-type]
    cursor: Text(200) | None = None  # type: ignore[valid-type]
    limit: int | None = Field(default=None, ge=1, le=200)


def evidence_out(row: EvidenceText) -> dict[str, Any]:
    return {
        "attachment_id": row.attachment_id,
        "lead_id": row.lead_id,
        "kind": row.kind,
        "status": row.status,
        "reason": row.reason,
        "engine": row.engine,
        "pages": row.pages,
        "text": row.text,
        "lines": row.lines,
        "facts": row.facts or {},
        "signed": row.signed,
        "signed_explanation": row.signed_explanation,
        "company_mismatch": row.company_mismatch,
        "mismatch_explanation": row.mismatch_explanation,
        "attempts": row.attempts,
        "seconds": row.seconds,
        "read_at": row.read_at,
    }


def snippet(text: str, query: str) -> str:
    """The lines of the text that hold the query (compared normalised, as the search does)."""
    from salesloop.engagement.ocr.search import search_normalise

    needle = search_normalise(query)
    hits = [line for line in text.splitlines() if needle and needle in search_normalise(line)]
    return " … ".join(hits[:3])[:300] or text[:120]


@router.get(
    "/attachments/{attachment_id}/ocr", response=EvidenceTextOut, summary="What OCR read on an attachment"
)
def attachment_ocr_detail(request: HttpRequest, attachment_id: RecordId) -> dict[str, Any]:
    user = request.auth  # type: ignore[attr-defined]
    row = selectors.evidence_text_get(user=user, attachment_id=attachment_id)
    return evidence_out(selectors.evidence_for_viewer(user=user, row=row))


@router.post(
    "/attachments/{attachment_id}/ocr/retry",
    response={202: EvidenceTextOut},
    summary="Read a failed attachment again",
)
def attachment_ocr_retry(request: HttpRequest, attachment_id: RecordId) -> Status[dict[str, Any]]:
    user = request.auth  # type: ignore[attr-defined]
    row = selectors.evidence_text_get(user=user, attachment_id=attachment_id)
    services.evidence_text_retry(actor=user, row=row)
    row = selectors.evidence_text_get(user=user, attachment_id=attachment_id)
    return Status(202, evidence_out(selectors.evidence_for_viewer(user=user, row=row)))


@router.get(
    "/evidence/search",
    response=EvidencePage,
    summary="Evidence whose OCR'd text contains `q` (leads in scope, newest first)",
)
def evidence_search(request: HttpRequest, query: Query[EvidenceQuery]) -> dict[str, Any]:
    user = request.auth  # type: ignore[attr-defined]
    if not query.q.strip():
        raise FilterError("q", "enter the text to look for")
    page = selectors.evidence_search(
        user=user, query=query.q, cursor=query.cursor, limit=query.limit or settings.SALESLOOP_PAGE_SIZE
    )
    items = []
    for row in page.items:
        view = selectors.evidence_masked(row, unmasked=False)  # a list: masked, as lists are
        items.append(
            {
                "attachment_id": row.attachment_id,
                "lead_id": row.lead_id,
                "lead_title": row.lead.title,
                "customer": row.lead.customer.name,
                "kind": row.kind,
                "title": row.attachment.title,
                "snippet": snippet(view.text, query.q),
                "signed": row.signed,
                "company_mismatch": row.company_mismatch,
            }
        )
    return {"items": items, "next_cursor": page.next_cursor}
