"""Background work of intake: what is too slow to do while a channel or a person waits."""

from __future__ import annotations

from django_tasks import task

from salesloop.intake.cards import card_read


@task()
def card_ocr(event_id: int) -> str:
    """C1.1 展会名片: read a card photo (a few seconds of OCR) and propose the lead's fields. The
    answer to the upload does not wait for it; the card page shows the draft when it is ready.
    Returns the card's status (draft, or failed with the reason on the event)."""
    return card_read(event_id=event_id).status
