"""Reads of evidence OCR (issue 6 item 3). Scoped like every record of a lead: through
`crm.selectors.leads_visible_to`, out of scope is a 404. Phone numbers read off a page are personal
data: masked (in the facts, the text and the lines) for roles that do not need them."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from django.http import Http404

from salesloop.core.roles import mask_phone, sees_all
from salesloop.crm.selectors import (
    FilterError,
    Page,
    cursor_decode,
    cursor_encode,
    lead_personal_data_visible,
    leads_visible_to,
)
from salesloop.engagement.ocr.models import EvidenceText
from salesloop.engagement.ocr.search import MAX_QUERY, search_normalise


def ocr_results_for(attachment_ids: Iterable[int]) -> dict[int, EvidenceText]:
    """The OCR result of each attachment that has one, in one query: lists of evidence call this
    once for their page of attachments rather than once per row."""
    ids = list(attachment_ids)
    if not ids:
        return {}
    return {row.attachment_id: row for row in EvidenceText.objects.filter(attachment_id__in=ids)}


def _in_scope(user: Any) -> Any:
    rows = EvidenceText.objects.all()
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return rows.none()
    if sees_all(user):
        return rows
    return rows.filter(lead_id__in=leads_visible_to(user).values("pk"))


def evidence_text_get(*, user: Any, attachment_id: int) -> EvidenceText:
    """The OCR result of an attachment, or 404 when there is none or its lead is out of scope."""
    row = (
        _in_scope(user)
        .select_related("attachment", "lead", "lead__owner", "lead__customer")
        .filter(pk=attachment_id)
        .first()
    )
    if row is None:
        raise Http404("no OCR result for this attachment")
    return row


def evidence_search(*, user: Any, query: str, cursor: str | None, limit: int) -> Page:
    """Attachments whose OCR'd text contains the query (normalised: docs/ocr.md), newest first,
    keyset-paged by attachment id; withdrawn attachments are left out. One query."""
    if "\x00" in query:  # PostgreSQL refuses NUL in text: a clear error, not a 500
        raise FilterError("q", "must not contain NUL characters")
    needle = search_normalise(query)[:MAX_QUERY]
    if not needle:
        return Page(items=[], next_cursor=None)
    rows = (
        _in_scope(user)
        .filter(search_text__contains=needle, attachment__removed_at__isnull=True)
        .select_related("attachment", "lead", "lead__owner", "lead__customer")
        .defer("lines", "search_text")
    )
    if cursor:
        rows = rows.filter(pk__lt=cursor_decode(cursor))
    found = list(rows.order_by("-pk")[: limit + 1])
    next_cursor = cursor_encode(found[limit - 1].pk) if len(found) > limit else None
    return Page(items=found[:limit], next_cursor=next_cursor)


def evidence_masked(row: EvidenceText, *, unmasked: bool) -> EvidenceText:
    """The row as a viewer may see it: for roles that may not see personal data, every phone number
    read is masked in the facts, the full text and the lines (a copy; the stored row is unchanged)."""
    phones = (row.facts or {}).get("phones") or []
    if unmasked or not phones:
        return row
    view = copy.copy(row)
    view.facts = copy.deepcopy(row.facts)
    text = row.text
    lines = copy.deepcopy(row.lines) if "lines" in row.__dict__ else []
    for phone in view.facts["phones"]:
        masked = mask_phone(phone["value"])
        text = text.replace(phone["text"], masked)
        for line in lines:
            line["text"] = line["text"].replace(phone["text"], masked)
        phone["value"], phone["text"] = masked, masked
    view.text = text
    if "lines" in row.__dict__:
        view.lines = lines
    return view


def evidence_for_viewer(*, user: Any, row: EvidenceText) -> EvidenceText:
    return evidence_masked(row, unmasked=lead_personal_data_visible(user=user, lead=row.lead))
