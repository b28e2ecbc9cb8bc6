"""REST endpoints of trade-show cards 展会名片 (SPEC C1.1), mounted at `/api/v1/intake/cards`.

Thin (STYLE.md 2): parse, check scope, call the same services the card pages call.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpRequest
from ninja import Field, File, Form, Query, Router, Schema, Status
from ninja.files import UploadedFile

from salesloop.core.audit import personal_data_access_record
from salesloop.core.schemas import RecordId, Text
from salesloop.intake import cards
from salesloop.intake.models import EventStatus, InboundEvent, Source, SourceKind

router = Router()


class CardFieldsOut(Schema):
    name: str = ""
    company: str = ""
    title: str = ""
    phone: str = Field("", description="E.164")
    email: str = ""
    address: str = ""
    city: str = ""
    province: str = ""


class OcrLineOut(Schema):
    text: str
    box: list[list[int]] = Field(description="4 corners [x, y], clockwise from top-left, in pixels")
    score: float


class CardOut(Schema):
    event_id: int
    status: str = Field(description="draft (OCR pending or done), failed (OCR failed), ignored (confirmed)")
    lead_id: int | None
    error: str
    source_id: int
    source_name: str
    uploaded_by: int | None
    received_at: dt.datetime
    ocr_pending: bool
    image_url: str
    fields: CardFieldsOut = Field(description="what the person confirmed, else what OCR proposes")


class CardDetailOut(CardOut):
    ocr_lines: list[OcrLineOut]
    why: dict[str, str] = Field(description="the reason behind each proposed field")
    phones: list[dict[str, str]] = Field(description="every phone number read on the card")
    confirmed: dict[str, Any] | None
    confirmed_event_id: int | None


class CardPage(Schema):
    items: list[CardOut]
    next_cursor: str | None


class CardQuery(Schema):
    status: Literal["draft", "failed", "ignored"] | None = None
    cursor: Text(200) | None = None  # type: ignore[valid-type]
    limit: int | None = Field(default=None, ge=1, le=200)


class CardConfirmIn(Schema):
    name: Text(80)  # type: ignore[valid-type]
    company: Text(200) = ""  # type: ignore[valid-type]
    title: Text(80) = ""  # type: ignore[valid-type]
    phone: Text(40) = ""  # type: ignore[valid-type]
    email: Text(254) = ""  # type: ignore[valid-type]
    address: Text(200) = ""  # type: ignore[valid-type]


class CardSourceOut(Schema):
    id: int
    name: str
    default_campaign: str


class ProblemOut(Schema):
    detail: list[dict[str, Any]]


def card_fields(event: InboundEvent) -> dict[str, str]:
    normalised = event.normalised or {}
    shown = normalised.get("confirmed") or normalised.get("draft") or {}
    return {key: str(shown.get(key) or "") for key in CardFieldsOut.model_fields}


def card_out(event: InboundEvent) -> dict[str, Any]:
    return {
        "event_id": event.pk,
        "status": event.status,
        "lead_id": event.lead_id,
        "error": event.error,
        "source_id": event.source_id,
        "source_name": event.source.name,
        "uploaded_by": event.created_by_id,
        "received_at": event.received_at,
        "ocr_pending": cards.card_ocr_pending(event),
        "image_url": f"{settings.SITE_URL}/api/v1/intake/cards/{event.pk}/image",
        "fields": card_fields(event),
    }


def card_detail_out(event: InboundEvent) -> dict[str, Any]:
    normalised = event.normalised or {}
    return {
        **card_out(event),
        "ocr_lines": normalised.get("ocr_lines") or [],
        "why": normalised.get("why") or {},
        "phones": normalised.get("phones") or [],
        "confirmed": normalised.get("confirmed"),
        "confirmed_event_id": normalised.get("confirmed_event_id"),
    }


def _access_record(request: HttpRequest, event: InboundEvent, fields: list[str]) -> None:
    """A card is a stranger's personal data: a look by anyone but its uploader is logged (PIPL)."""
    user = request.auth  # type: ignore[attr-defined]
    if event.created_by_id != user.pk:
        personal_data_access_record(actor=user, subject=event, fields=fields, channel="api")


def _problem(status: int, field: str, message: str) -> Status[dict[str, Any]]:
    return Status(status, {"detail": [{"loc": ["body", field], "msg": message}]})


@router.get("/sources", response=list[CardSourceOut], summary="Card sources an upload can go to")
def card_source_list(request: HttpRequest) -> list[Source]:
    return list(cards.card_sources())


@router.post(
    "",
    response={200: CardDetailOut, 202: CardDetailOut, 413: ProblemOut, 415: ProblemOut, 422: ProblemOut},
    summary="Upload a card photo (multipart `photo`); OCR runs in the background",
)
def card_create(
    request: HttpRequest, photo: File[UploadedFile], source_id: Form[RecordId | None] = None
) -> Status[dict[str, Any]]:
    """202 while the card is a draft; the same photo again answers with its first card (200 once
    that card was confirmed)."""
    if source_id is None:
        source = cards.card_source_default()
    else:
        found = Source.objects.filter(pk=source_id, kind=SourceKind.CARD).first()
        if found is None:
            raise ValidationError({"source_id": "no such trade-show card source"})
        source = found
    if photo.size is not None and photo.size > cards.CARD_MAX_BYTES:
        return _problem(413, "photo", f"the photo is larger than {cards.CARD_MAX_BYTES // (1024 * 1024)} MB")
    try:
        event = cards.card_upload(
            actor=request.auth,  # type: ignore[attr-defined]
            source=source,
            image_bytes=photo.read(),
            content_type=photo.content_type or "",
            headers={k: v for k, v in request.headers.items() if k in {"User-Agent", "X-Request-Id"}},
            remote_addr=request.META.get("REMOTE_ADDR") or None,
        )
    except cards.CardImageRefused as exc:
        return _problem(exc.status, "photo", str(exc))
    event = cards.card_get(user=request.auth, event_id=event.pk)  # type: ignore[attr-defined]
    return Status(202 if event.status == EventStatus.DRAFT else 200, card_detail_out(event))


@router.get("", response=CardPage, summary="Cards in scope; `status=draft` are those awaiting a person")
def card_list(request: HttpRequest, query: Query[CardQuery]) -> dict[str, Any]:
    page = cards.card_list(
        user=request.auth,  # type: ignore[attr-defined]
        status=query.status,
        cursor=query.cursor,
        limit=query.limit or settings.SALESLOOP_PAGE_SIZE,
    )
    return {"items": [card_out(e) for e in page.items], "next_cursor": page.next_cursor}


@router.get("/{event_id}", response=CardDetailOut, summary="One card: OCR lines and the proposed fields")
def card_detail(request: HttpRequest, event_id: RecordId) -> dict[str, Any]:
    event = cards.card_get(user=request.auth, event_id=event_id)  # type: ignore[attr-defined]
    _access_record(request, event, ["ocr_lines", "fields"])
    return card_detail_out(event)


@router.get("/{event_id}/image", summary="The card photo as uploaded")
def card_image(request: HttpRequest, event_id: RecordId) -> FileResponse:
    event = cards.card_get(user=request.auth, event_id=event_id)  # type: ignore[attr-defined]
    _access_record(request, event, ["photo"])
    return cards.card_image_response(event)


@router.post(
    "/{event_id}/confirm",
    response=CardDetailOut,
    summary="Confirm (or correct) the fields: creates the lead, or a touch on a known person's lead",
)
def card_confirm(request: HttpRequest, event_id: RecordId, payload: CardConfirmIn) -> dict[str, Any]:
    user = request.auth  # type: ignore[attr-defined]
    event = cards.card_confirm(
        actor=user, event=cards.card_get(user=user, event_id=event_id), **payload.dict()
    )
    return card_detail_out(cards.card_get(user=user, event_id=event.pk))


@router.post("/{event_id}/retry", response=CardDetailOut, summary="Read a failed (or stuck) card again")
def card_retry(request: HttpRequest, event_id: RecordId) -> dict[str, Any]:
    user = request.auth  # type: ignore[attr-defined]
    event = cards.card_ocr_retry(actor=user, event=cards.card_get(user=user, event_id=event_id))
    return card_detail_out(cards.card_get(user=user, event_id=event.pk))
