"""Background work of evidence OCR (django-tasks): reading an attachment takes seconds per page."""

from __future__ import annotations

from django_tasks import task

from salesloop.engagement.ocr.services import evidence_text_read


@task()
def attachment_ocr(attachment_id: int) -> str:
    """Issue 6 item 3: OCR an image or PDF attachment, extract its key facts, judge a signature
    page. Returns the reading's status (done, skipped, or failed with the reason on the row)."""
    return evidence_text_read(attachment_id=attachment_id).status
