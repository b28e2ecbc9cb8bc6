"""Engagement capture by API (SPEC C3.4): attachments and share links, touches, meetings (with an
idempotent endpoint for meeting systems) and budget milestones. Thin: parse, scope the lead with
`lead_get` (404 out of scope), call the services the lead page calls. A flat output schema reads
the record's attributes of the same names (`Schema.from_orm`), so a field is named once."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Annotated, Any

import pydantic
from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpRequest
from django.http.multipartparser import MultiPartParserError
from django.urls import reverse
from ninja import Field, Router, Schema, Status

from salesloop.core.schemas import RecordId, Text
from salesloop.crm.models import Attachment, Contact
from salesloop.crm.selectors import lead_get
from salesloop.engagement import selectors, services
from salesloop.engagement.models import (
    BudgetStage,
    MeetingStatus,
    TouchDirection,
    TouchKind,
)
from salesloop.engagement.responses import attachment_file_response, share_url
from salesloop.engagement.selectors import DocumentStats

lead_router = Router()  # mounted at /leads
router = Router()  # mounted at the API root: records addressed by their own id

Amount = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
Minutes = Annotated[int, Field(ge=0, le=1440)]


# ---- output ---------------------------------------------------------------------------------------


class ViewOut(Schema):
    id: int
    opened_at: dt.datetime
    last_beat_at: dt.datetime
    seconds: int = Field(description="seconds the page was visible")


class DocumentOut(Schema):
    id: int
    attachment_id: int
    share_url: str | None = Field(description="the secret link; null once revoked")
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    opens: int
    seconds: int = Field(description="visible seconds over all openings")
    views: list[ViewOut]


class AttachmentOut(Schema):
    id: int
    lead_id: int
    kind: str
    title: str
    url: str
    file_name: str
    content_type: str
    size: int
    download_url: str | None
    created_at: dt.datetime
    removed_at: dt.datetime | None
    tracked: DocumentOut | None


def document_out(stats: DocumentStats) -> DocumentOut:
    document = stats.document
    return DocumentOut(
        id=document.pk,
        attachment_id=document.attachment_id,
        share_url=share_url(document.token) if document.revoked_at is None else None,
        created_at=document.created_at,
        revoked_at=document.revoked_at,
        opens=stats.opens,
        seconds=stats.seconds,
        views=[
            ViewOut(id=v.pk, opened_at=v.opened_at, last_beat_at=v.last_beat_at, seconds=v.seconds)
            for v in stats.views
        ],
    )


def attachment_out(attachment: Attachment, tracked: DocumentStats | None) -> AttachmentOut:
    return AttachmentOut(
        id=attachment.pk,
        lead_id=attachment.lead_id,
        kind=attachment.kind,
        title=attachment.title,
        url=attachment.url,
        file_name=attachment.file.name.rsplit("/", 1)[-1] if attachment.file else "",
        content_type=attachment.content_type,
        size=attachment.size,
        download_url=reverse("api-v1:attachment_file", args=[attachment.pk]) if attachment.file else None,
        created_at=attachment.created_at,
        removed_at=attachment.removed_at,
        tracked=document_out(tracked) if tracked else None,
    )


# ---- attachments ----------------------------------------------------------------------------------


class AttachmentLinkIn(Schema):
    kind: Text(40)  # type: ignore[valid-type]
    title: Text(200) = ""  # type: ignore[valid-type]
    url: Text(500)  # type: ignore[valid-type]


_ATTACHMENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["kind", "file"],
                    "properties": {
                        "kind": {"type": "string", "maxLength": 40, "description": "e.g. proposal"},
                        "title": {"type": "string", "maxLength": 200},
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "PDF, image or office file",
                        },
                    },
                }
            },
            "application/json": {"schema": AttachmentLinkIn.model_json_schema()},
        },
    }
}


def _attachment_input(request: HttpRequest) -> dict[str, Any]:
    """A multipart upload (`file`) or a JSON link, as the service's arguments."""
    if request.content_type == "multipart/form-data":
        try:
            form, files = request.POST, request.FILES
        except MultiPartParserError:
            raise ValidationError({"file": "the upload could not be read"}) from None
        return {
            "kind": str(form.get("kind", "")),
            "title": str(form.get("title", "")),
            "file": files.get("file"),
            "url": str(form.get("url", "")),
        }
    try:
        link = AttachmentLinkIn.model_validate(json.loads(request.body or b"null"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValidationError({"url": "send JSON {kind, title, url} or a multipart upload"}) from None
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "url"
        raise ValidationError({field: first["msg"]}) from None
    return {"kind": link.kind, "title": link.title, "url": link.url}


@lead_router.post(
    "/{lead_id}/attachments",
    response={201: AttachmentOut},
    summary="Attach a file (multipart) or a link (JSON) to a lead",
    openapi_extra=_ATTACHMENT_BODY,
)
def attachment_create(request: HttpRequest, lead_id: RecordId) -> Status[AttachmentOut]:
    user = request.auth  # type: ignore[attr-defined]
    lead = lead_get(user=user, lead_id=lead_id)
    attachment = services.attachment_add(actor=user, lead=lead, **_attachment_input(request))
    return Status(201, attachment_out(attachment, None))


@lead_router.get("/{lead_id}/attachments", response=list[AttachmentOut], summary="A lead's attachments")
def attachment_list(request: HttpRequest, lead_id: RecordId) -> list[AttachmentOut]:
    lead = lead_get(user=request.auth, lead_id=lead_id)  # type: ignore[attr-defined]
    return [attachment_out(row.attachment, row.tracked) for row in selectors.attachments_of(lead=lead)]


@router.get(
    "/attachments/{attachment_id}/file", url_name="attachment_file", summary="Download an attached file"
)
def attachment_file(request: HttpRequest, attachment_id: RecordId) -> FileResponse:
    attachment = selectors.attachment_get(user=request.auth, attachment_id=attachment_id)  # type: ignore[attr-defined]
    return attachment_file_response(attachment, inline=False)


class RemoveIn(Schema):
    reason: Text(2000) = ""  # type: ignore[valid-type]


@router.post("/attachments/{attachment_id}/remove", response=AttachmentOut, summary="Withdraw an attachment")
def attachment_withdraw(request: HttpRequest, attachment_id: RecordId, payload: RemoveIn) -> AttachmentOut:
    user = request.auth  # type: ignore[attr-defined]
    attachment = selectors.attachment_get(user=user, attachment_id=attachment_id)
    services.attachment_remove(actor=user, attachment=attachment, reason=payload.reason)
    document = getattr(attachment, "tracked", None)
    return attachment_out(attachment, selectors.document_stats(document) if document else None)


# ---- tracked documents ----------------------------------------------------------------------------


@router.post(
    "/attachments/{attachment_id}/share",
    response={200: DocumentOut, 201: DocumentOut},
    summary="Share an attachment through a tracked link (the same link while it is live)",
)
def attachment_share(request: HttpRequest, attachment_id: RecordId) -> Status[DocumentOut]:
    user = request.auth  # type: ignore[attr-defined]
    attachment = selectors.attachment_get(user=user, attachment_id=attachment_id)
    was_live = (
        selectors.document_by_token(getattr(getattr(attachment, "tracked", None), "token", "")) is not None
    )
    document = services.document_share(actor=user, attachment=attachment)
    stats = selectors.document_stats(selectors.document_get(user=user, document_id=document.pk))
    return Status(200 if was_live else 201, document_out(stats))


@lead_router.get("/{lead_id}/documents", response=list[DocumentOut], summary="A lead's tracked documents")
def document_list(request: HttpRequest, lead_id: RecordId) -> list[DocumentOut]:
    lead = lead_get(user=request.auth, lead_id=lead_id)  # type: ignore[attr-defined]
    return [document_out(stats) for stats in selectors.tracked_documents_of(lead=lead)]


@router.get("/documents/{document_id}", response=DocumentOut, summary="A tracked document with each opening")
def document_detail(request: HttpRequest, document_id: RecordId) -> DocumentOut:
    document = selectors.document_get(user=request.auth, document_id=document_id)  # type: ignore[attr-defined]
    return document_out(selectors.document_stats(document))


@router.post("/documents/{document_id}/revoke", response=DocumentOut, summary="Revoke a share link")
def document_revoke(request: HttpRequest, document_id: RecordId) -> DocumentOut:
    user = request.auth  # type: ignore[attr-defined]
    document = selectors.document_get(user=user, document_id=document_id)
    services.document_revoke(actor=user, document=document)
    return document_out(selectors.document_stats(document))


# ---- touches --------------------------------------------------------------------------------------


class TouchIn(Schema):
    kind: TouchKind
    direction: TouchDirection
    responded: bool | None = Field(
        default=None, description="outbound only: did the customer respond (null: not yet known)"
    )
    customer_initiated: bool = Field(default=False, description="inbound only: the customer started it")
    at: dt.datetime | None = Field(default=None, description="when; not in the future (default: now)")
    note: Text(2000) = ""  # type: ignore[valid-type]
    contact_id: RecordId | None = Field(default=None, description="a contact of the lead's customer")


class TouchPatch(Schema):
    responded: bool = Field(description="the response to an outbound touch, learned later (set once)")


class TouchOut(Schema):
    id: int
    lead_id: int
    kind: str
    direction: str
    responded: bool | None
    responded_recorded_at: dt.datetime | None
    customer_initiated: bool
    at: dt.datetime
    note: str
    contact_id: int | None
    actor_id: int | None


@lead_router.post(
    "/{lead_id}/touches", response={201: TouchOut}, summary="Record a call, message, e-mail or visit"
)
def touch_create(request: HttpRequest, lead_id: RecordId, payload: TouchIn) -> Status[TouchOut]:
    user = request.auth  # type: ignore[attr-defined]
    lead = lead_get(user=user, lead_id=lead_id)
    contact = None
    if payload.contact_id is not None:
        contact = Contact.objects.filter(pk=payload.contact_id).first()
        if contact is None:
            raise ValidationError({"contact_id": "not a contact of this lead's customer"})
    touch = services.touch_record(
        actor=user,
        lead=lead,
        kind=payload.kind.value,
        direction=payload.direction.value,
        responded=payload.responded,
        customer_initiated=payload.customer_initiated,
        at=payload.at,
        note=payload.note,
        contact=contact,
    )
    return Status(201, TouchOut.from_orm(touch))


@lead_router.get("/{lead_id}/touches", response=list[TouchOut], summary="A lead's touches, newest first")
def touch_list(request: HttpRequest, lead_id: RecordId) -> list[TouchOut]:
    lead = lead_get(user=request.auth, lead_id=lead_id)  # type: ignore[attr-defined]
    return [TouchOut.from_orm(t) for t in selectors.touches_of(lead=lead)]


@router.patch("/touches/{touch_id}", response=TouchOut, summary="Record whether the customer responded")
def touch_update(request: HttpRequest, touch_id: RecordId, payload: TouchPatch) -> TouchOut:
    user = request.auth  # type: ignore[attr-defined]
    touch = selectors.touch_get(user=user, touch_id=touch_id)
    return TouchOut.from_orm(
        services.touch_response_record(actor=user, touch=touch, responded=payload.responded)
    )


# ---- meetings -------------------------------------------------------------------------------------


class MeetingIn(Schema):
    title: Text(200)  # type: ignore[valid-type]
    scheduled_at: dt.datetime
    planned_minutes: Minutes = 60
    online: bool = False
    status: MeetingStatus = MeetingStatus.SCHEDULED
    attended_minutes: Minutes | None = Field(default=None, description="required when attended")
    minutes_text: Text(20000) = ""  # type: ignore[valid-type]


class MeetingPatch(Schema):
    """Only the fields sent change."""

    title: Text(200) = None  # type: ignore[valid-type,assignment]
    scheduled_at: dt.datetime = None  # type: ignore[assignment]
    planned_minutes: Minutes = None  # type: ignore[assignment]
    online: bool = None  # type: ignore[assignment]
    status: MeetingStatus = None  # type: ignore[assignment]
    attended_minutes: Minutes | None = None
    minutes_text: Text(20000) = None  # type: ignore[valid-type,assignment]


class MeetingPushIn(MeetingPatch):
    lead_id: RecordId


class MeetingOut(Schema):
    id: int
    lead_id: int
    title: str
    scheduled_at: dt.datetime
    planned_minutes: int
    status: str
    attended_minutes: int | None
    minutes_text: str
    online: bool
    system: str
    external_id: str
    created_at: dt.datetime
    updated_at: dt.datetime


def _changes(payload: Schema, exclude: set[str] | None = None) -> dict[str, Any]:
    changes = payload.model_dump(exclude_unset=True, exclude=exclude or set())
    return {k: (v.value if isinstance(v, MeetingStatus) else v) for k, v in changes.items()}


@lead_router.post("/{lead_id}/meetings", response={201: MeetingOut}, summary="Schedule or record a meeting")
def meeting_create(request: HttpRequest, lead_id: RecordId, payload: MeetingIn) -> Status[MeetingOut]:
    user = request.auth  # type: ignore[attr-defined]
    lead = lead_get(user=user, lead_id=lead_id)
    fields = _changes(payload)
    fields.update(title=payload.title, scheduled_at=payload.scheduled_at)
    return Status(201, MeetingOut.from_orm(services.meeting_schedule(actor=user, lead=lead, **fields)))


@lead_router.get("/{lead_id}/meetings", response=list[MeetingOut], summary="A lead's meetings, latest first")
def meeting_list(request: HttpRequest, lead_id: RecordId) -> list[MeetingOut]:
    lead = lead_get(user=request.auth, lead_id=lead_id)  # type: ignore[attr-defined]
    return [MeetingOut.from_orm(m) for m in selectors.meetings_of(lead=lead)]


@router.get("/meetings/{meeting_id}", response=MeetingOut, summary="A meeting")
def meeting_detail(request: HttpRequest, meeting_id: RecordId) -> MeetingOut:
    return MeetingOut.from_orm(selectors.meeting_get(user=request.auth, meeting_id=meeting_id))  # type: ignore[attr-defined]


@router.patch(
    "/meetings/{meeting_id}", response=MeetingOut, summary="Reschedule a meeting or record its outcome"
)
def meeting_patch(request: HttpRequest, meeting_id: RecordId, payload: MeetingPatch) -> MeetingOut:
    user = request.auth  # type: ignore[attr-defined]
    meeting = selectors.meeting_get(user=user, meeting_id=meeting_id)
    return MeetingOut.from_orm(services.meeting_update(actor=user, meeting=meeting, **_changes(payload)))


@router.put(
    "/meetings/by-external/{system}/{external_id}",
    response={200: MeetingOut, 201: MeetingOut},
    summary="A meeting system's push, idempotent on (system, external_id)",
    description="The first push creates the meeting (201; title and scheduled_at required); a replay or a "
    "later state of the same meeting updates it (200) and creates nothing.",
)
def meeting_push(
    request: HttpRequest, system: Text(30), external_id: Text(100), payload: MeetingPushIn
) -> Status[MeetingOut]:  # type: ignore[valid-type]
    user = request.auth  # type: ignore[attr-defined]
    existing = selectors.meeting_by_external(
        user=user, system=system.strip(), external_id=external_id.strip()
    )
    lead = lead_get(user=user, lead_id=payload.lead_id)
    if existing is not None and existing.lead_id != lead.pk:
        raise ValidationError({"lead_id": "this meeting belongs to another lead"})
    meeting, created = services.meeting_push(
        actor=user,
        lead=lead,
        system=system,
        external_id=external_id,
        **_changes(payload, exclude={"lead_id"}),
    )
    return Status(201 if created else 200, MeetingOut.from_orm(meeting))


# ---- budget ---------------------------------------------------------------------------------------


class BudgetIn(Schema):
    stage: BudgetStage
    amount_low: Amount | None = None
    amount_high: Amount | None = None
    note: Text(2000) = ""  # type: ignore[valid-type]


class BudgetOut(Schema):
    id: int
    lead_id: int
    stage: str
    amount_low: Decimal | None
    amount_high: Decimal | None
    at: dt.datetime
    note: str
    actor_id: int | None


class BudgetListOut(Schema):
    current: BudgetOut | None = Field(description="the latest milestone")
    items: list[BudgetOut] = Field(description="oldest first")


@lead_router.post("/{lead_id}/budget", response={201: BudgetOut}, summary="Record a budget milestone")
def budget_create(request: HttpRequest, lead_id: RecordId, payload: BudgetIn) -> Status[BudgetOut]:
    user = request.auth  # type: ignore[attr-defined]
    lead = lead_get(user=user, lead_id=lead_id)
    milestone = services.budget_milestone_record(
        actor=user,
        lead=lead,
        stage=payload.stage.value,
        amount_low=payload.amount_low,
        amount_high=payload.amount_high,
        note=payload.note,
    )
    return Status(201, BudgetOut.from_orm(milestone))


@lead_router.get("/{lead_id}/budget", response=BudgetListOut, summary="A lead's budget milestones")
def budget_list(request: HttpRequest, lead_id: RecordId) -> BudgetListOut:
    lead = lead_get(user=request.auth, lead_id=lead_id)  # type: ignore[attr-defined]
    items = [BudgetOut.from_orm(m) for m in selectors.budget_milestones_of(lead=lead)]
    return BudgetListOut(current=items[-1] if items else None, items=items)
