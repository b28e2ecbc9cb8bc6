"""OCR of evidence attachments (SPEC C3.4, issue 6 item 3): writes.

`attachment_add` calls `evidence_text_request` in its transaction for every image or PDF file: a
`pending` row is created and the `attachment_ocr` task enqueued (with the database queue both commit
together or not at all). The task runs `evidence_text_read`: the slow part (decoding pages, OCR, the
seal search) outside any transaction, then one short transaction stores the text, the facts, the
signed verdict and the company check. A failed read keeps its reason and can be retried.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from PIL import Image

from salesloop.core import clock, explanations
from salesloop.core.audit import audit_record
from salesloop.core.ocr import OcrLine, OcrUnreadable, ocr_engine_version, ocr_image_read
from salesloop.crm.models import Attachment
from salesloop.crm.selectors import lead_editable
from salesloop.engagement.ocr import facts as fx
from salesloop.engagement.ocr.models import EvidenceText, OcrStatus
from salesloop.engagement.ocr.pages import NoPageImages, ocr_able, page_images
from salesloop.engagement.ocr.seal import red_seal_find
from salesloop.engagement.ocr.search import search_normalise

log = logging.getLogger(__name__)

SIGNATURE_KIND = "signature_page"
# Points of the signed verdict (docs/ocr.md): a seal is the strongest cue; a signature needs a
# filled date beside it to count as signed without a seal.
SEAL_POINTS, SIGNATURE_POINTS, DATE_POINTS, DATE_BLANK_POINTS = 2, 1, 1, -1
SIGNED_THRESHOLD = 2


def _to_json_line(line: OcrLine, page: int) -> dict[str, Any]:
    return {"page": page, **line.as_json()}


@transaction.atomic
def evidence_text_request(*, attachment: Attachment) -> EvidenceText | None:
    """Ask for OCR of a new attachment when its file is an image or a PDF (None otherwise)."""
    from salesloop.engagement.ocr.tasks import attachment_ocr  # the task module imports this one

    if not attachment.file or not ocr_able(attachment.content_type):
        return None
    row = EvidenceText.objects.create(
        attachment=attachment, lead_id=attachment.lead_id, kind=attachment.kind, created_at=clock.now()
    )
    attachment_ocr.enqueue(attachment.pk)
    return row


@dataclass
class _Page:
    number: int
    lines: list[OcrLine]
    seal: dict[str, Any]
    first_line: int  # index of the page's first line among all stored lines


@dataclass
class _Reading:
    pages: list[_Page] = field(default_factory=list)
    lines: list[OcrLine] = field(default_factory=list)
    json_lines: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""


def _read_pages(images: list[Image.Image]) -> _Reading:
    reading = _Reading()
    for number, image in enumerate(images, 1):
        lines = ocr_image_read(image)
        reading.pages.append(
            _Page(number=number, lines=lines, seal=red_seal_find(image), first_line=len(reading.lines))
        )
        reading.lines += lines
        reading.json_lines += [_to_json_line(line, number) for line in lines]
    return reading


def signed_verdict(
    reading: _Reading, dates: list[fx.Fact], *, kind: str
) -> tuple[bool | None, dict[str, Any] | None]:
    """Issue 6 item 3: does the signature/seal page look signed? Judged on attachments of kind
    `signature_page` and on any page whose text has 签字/盖章 cues; None for other evidence."""
    reasons: list[dict[str, Any]] = []
    points, judged, best_seal = 0, False, None
    for page in reading.pages:
        page_dates = [d for d in dates if page.first_line <= d.line < page.first_line + len(page.lines)]
        relative = [
            fx.Fact(d.kind, d.value, d.text, d.line - page.first_line, d.confidence) for d in page_dates
        ]
        cues = fx.sign_cues(page.lines, relative)
        seal = page.seal
        if not (cues.is_signature_page or seal["found"] or kind == SIGNATURE_KIND):
            continue
        judged = True
        if seal["blob"] and (best_seal is None or seal["found"]):
            best_seal = seal
        absolute = [i + page.first_line for i in cues.filled_lines]
        if seal["found"]:
            blob = seal["blob"]
            points += SEAL_POINTS
            reasons.append(
                {
                    "cue": "red_seal",
                    "points": SEAL_POINTS,
                    "page": page.number,
                    "lines": [],
                    "detail": f"round red blob {blob['box'][2] - blob['box'][0]}×"
                    f"{blob['box'][3] - blob['box'][1]} px at {blob['box'][:2]}",
                }
            )
        if absolute:
            points += SIGNATURE_POINTS
            reasons.append(
                {
                    "cue": "signature_filled",
                    "points": SIGNATURE_POINTS,
                    "page": page.number,
                    "lines": absolute,
                    "detail": " / ".join(reading.lines[i].text for i in absolute)[:300],
                }
            )
        elif cues.cue_lines:
            reasons.append(
                {
                    "cue": "signature_blank",
                    "points": 0,
                    "page": page.number,
                    "lines": [i + page.first_line for i in cues.cue_lines],
                    "detail": "nothing written next to 签字/盖章",
                }
            )
        if cues.date_filled:
            points += DATE_POINTS
            reasons.append(
                {
                    "cue": "date_filled",
                    "points": DATE_POINTS,
                    "page": page.number,
                    "lines": sorted({d.line for d in page_dates}),
                    "detail": ", ".join(sorted({d.value for d in page_dates})),
                }
            )
        if cues.date_blank:
            points += DATE_BLANK_POINTS
            reasons.append(
                {
                    "cue": "date_blank",
                    "points": DATE_BLANK_POINTS,
                    "page": page.number,
                    "lines": [],
                    "detail": "a date field is left blank (年 月 日)",
                }
            )
    if not judged:
        return None, None
    signed = points >= SIGNED_THRESHOLD
    return signed, explanations.build(
        "evidence_signed",
        signed=signed,
        points=points,
        threshold=SIGNED_THRESHOLD,
        reasons=reasons,
        seal=(best_seal or {}).get("blob"),
    )


def company_check(
    companies: list[fx.Fact], *, customer: str, kind: str
) -> tuple[bool, dict[str, Any] | None]:
    """Issue 6 item 3: a signature page whose OCR'd companies all differ from the lead's customer is
    flagged. Only signature pages are checked, and only when a company was read at all (an
    unreadable page is not evidence of another company)."""
    if kind != SIGNATURE_KIND or not customer or not companies:
        return False, None
    scored = [
        {"name": c.value, "similarity": fx.company_similarity(c.value, customer), "line": c.line}
        for c in companies
    ]
    best = max(scored, key=lambda c: c["similarity"])
    mismatch = best["similarity"] < fx.COMPANY_MATCH_THRESHOLD
    names = "、".join(f"「{c['name']}」" for c in scored)
    message = (
        f"the signature page names {names}, none of which is the lead's customer 「{customer}」"
        if mismatch
        else f"the signature page names the lead's customer 「{customer}」 as 「{best['name']}」"
    )
    return mismatch, explanations.build(
        "evidence_company_mismatch",
        mismatch=mismatch,
        customer=customer,
        threshold=fx.COMPANY_MATCH_THRESHOLD,
        companies=scored,
        message=message,
    )


def _reference_day(row: EvidenceText) -> dt.date:
    return row.attachment.created_at.astimezone(clock.org_tz()).date()


def evidence_text_read(*, attachment_id: int) -> EvidenceText:
    """The task body: read a pending attachment's pages and store what was found. Idempotent: a row
    that is not pending (read already, or retried and read by another worker) is left alone."""
    row = EvidenceText.objects.select_related("attachment", "lead__customer").get(pk=attachment_id)
    if row.status != OcrStatus.PENDING:
        return row
    started = time.monotonic()
    status, reason, reading = OcrStatus.DONE, "", _Reading()
    try:
        with row.attachment.file.open("rb") as stored:
            content = stored.read()
        images, note = page_images(content, row.attachment.content_type)
        reading = _read_pages(images)
        reading.note = note
    except NoPageImages as exc:
        status, reason = OcrStatus.SKIPPED, str(exc)
    except OcrUnreadable as exc:
        status, reason = OcrStatus.FAILED, str(exc)
    except FileNotFoundError:
        status, reason = OcrStatus.FAILED, "the stored file is missing"
    except Exception as exc:  # the engine's own failures (onnxruntime, OpenCV) vary: keep the reason
        log.exception("OCR of attachment %s failed", attachment_id)
        status, reason = OcrStatus.FAILED, f"OCR failed: {exc.__class__.__name__}: {exc}"[:500]
    if status == OcrStatus.DONE and not reading.lines:
        reason = "no text found"
    values: dict[str, Any] = {"facts": {}, "signed": None, "signed_explanation": None}
    values.update(company_mismatch=False, mismatch_explanation=None)
    if status == OcrStatus.DONE:
        reference = _reference_day(row)
        dates = fx.dates_extract(reading.lines, reference=reference)
        facts = fx.facts_extract(reading.lines, reference=reference)
        signed, signed_why = signed_verdict(reading, dates, kind=row.kind)
        mismatch, mismatch_why = company_check(
            fx.companies_extract(reading.lines), customer=row.lead.customer.name, kind=row.kind
        )
        values = {
            "facts": facts,
            "signed": signed,
            "signed_explanation": signed_why,
            "company_mismatch": mismatch,
            "mismatch_explanation": mismatch_why,
        }
        reason = reading.note or reason
    text = "\n".join(line.text for line in reading.lines)
    with transaction.atomic():
        row = EvidenceText.objects.select_for_update().get(pk=attachment_id)
        if row.status != OcrStatus.PENDING:
            return row
        row.status, row.reason = status, reason[:500]
        row.engine = ocr_engine_version() if status == OcrStatus.DONE else ""
        row.pages = len(reading.pages)
        row.text, row.search_text = text, search_normalise(text)
        row.lines = reading.json_lines
        for name, value in values.items():
            setattr(row, name, value)
        row.attempts += 1
        row.seconds = round(time.monotonic() - started, 2)
        row.read_at = clock.now()
        row.save()
    return row


@transaction.atomic
def evidence_text_retry(*, actor: Any, row: EvidenceText) -> EvidenceText:
    """Read an attachment again after OCR failed (a worker crash, a bad engine run). Only failed rows:
    a done row would read the same file to the same result."""
    from salesloop.engagement.ocr.tasks import attachment_ocr

    if not lead_editable(user=actor, lead=row.lead):
        raise PermissionDenied("you may not change this lead")
    row = EvidenceText.objects.select_for_update().get(pk=row.pk)
    if row.status != OcrStatus.FAILED:
        raise ValidationError({"status": f"only failed readings are retried; this one is {row.status}"})
    before = {"status": row.status, "reason": row.reason}
    row.status, row.reason = OcrStatus.PENDING, ""
    row.save(update_fields=["status", "reason"])
    audit_record(
        actor=actor,
        action="evidence_ocr.retry",
        target=row.attachment,
        before=before,
        after={"status": row.status},
    )
    attachment_ocr.enqueue(row.pk)
    row.refresh_from_db()
    return row
