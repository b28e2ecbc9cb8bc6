"""Engagement capture (SPEC C3.4): attachments, tracked documents and their views, meetings, touches
and budget milestones. Every write checks that the actor may change the lead (`lead_editable`);
a lead the actor cannot see never reaches here (callers fetch it with `crm.selectors.lead_get`).

After each new fact that feeds the health score, `health.services.lead_health_changed` is called:
inline, inside the same transaction, for touches, meeting outcomes, budget milestones and view
openings (rare, and a score that disagrees with the facts must never be committed); after commit for
view heartbeats, which arrive every few seconds while a customer reads and must stay cheap.
"""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils.text import get_valid_filename

from salesloop.core import clock
from salesloop.core.audit import audit_record, snapshot
from salesloop.crm import signals
from salesloop.crm.models import Attachment, Contact, Lead
from salesloop.crm.selectors import lead_editable
from salesloop.engagement.models import (
    BudgetMilestone,
    BudgetStage,
    DocumentView,
    Meeting,
    MeetingStatus,
    Touch,
    TouchDirection,
    TouchKind,
    TrackedDocument,
)
from salesloop.engagement.ocr.services import evidence_text_request
from salesloop.health import services as health

# ---- attachments --------------------------------------------------------------------------------

ATTACHMENT_MAX_BYTES = 20 * 1024 * 1024
# What may be uploaded, by extension: the content type we serve it with and the first bytes the file
# must start with — the name and the browser's claim are not trusted, the content is.
ALLOWED_FILES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    "pdf": ("application/pdf", (b"%PDF-",)),
    "png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    "jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "gif": ("image/gif", (b"GIF87a", b"GIF89a")),
    "webp": ("image/webp", (b"RIFF",)),
    "doc": ("application/msword", (b"\xd0\xcf\x11\xe0",)),
    "xls": ("application/vnd.ms-excel", (b"\xd0\xcf\x11\xe0",)),
    "ppt": ("application/vnd.ms-powerpoint", (b"\xd0\xcf\x11\xe0",)),
    "docx": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        (b"PK\x03\x04",),
    ),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (b"PK\x03\x04",)),
    "pptx": (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        (b"PK\x03\x04",),
    ),
}
KIND_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
_http_url = URLValidator(schemes=["http", "https"])


def _require_editable(actor: Any, lead: Lead) -> None:
    if not lead_editable(user=actor, lead=lead):
        raise PermissionDenied("you may not change this lead")


def attachment_kind_clean(kind: str) -> str:
    kind = (kind or "").strip().lower().replace(" ", "_")
    if not kind or len(kind) > 40 or not set(kind) <= KIND_CHARS:
        raise ValidationError({"kind": "a kind is 1–40 lowercase letters, digits, _ or - (e.g. proposal)"})
    return kind


def _file_checked(file: UploadedFile) -> tuple[str, str]:
    """The file's safe name and the content type it will be served with, or a ValidationError."""
    name = get_valid_filename((file.name or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]) or "file"
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension not in ALLOWED_FILES:
        allowed = ", ".join(sorted(ALLOWED_FILES))
        raise ValidationError({"file": f"this type of file is not accepted; accepted: {allowed}"})
    if not file.size:
        raise ValidationError({"file": "the file is empty"})
    if file.size > ATTACHMENT_MAX_BYTES:
        raise ValidationError({"file": f"the file is larger than {ATTACHMENT_MAX_BYTES // (1024 * 1024)} MB"})
    content_type, signatures = ALLOWED_FILES[extension]
    file.seek(0)
    head = file.read(16)
    file.seek(0)
    if not any(head.startswith(signature) for signature in signatures) or (
        extension == "webp" and head[8:12] != b"WEBP"
    ):
        raise ValidationError({"file": f"the content is not a .{extension} file"})
    return name[-100:], content_type


@transaction.atomic
def attachment_add(
    *,
    actor: Any,
    lead: Lead,
    kind: str,
    title: str = "",
    file: UploadedFile | None = None,
    url: str | None = None,
) -> Attachment:
    """C3.4 / C2.2: a file (PDF, image, office document, ≤ 20 MB) or an http(s) link attached to a
    lead under a kind; stage requirements count the kinds of the attachments not withdrawn."""
    _require_editable(actor, lead)
    kind = attachment_kind_clean(kind)
    title = (title or "").strip()
    url = (url or "").strip()
    if len(title) > 200:
        raise ValidationError({"title": "at most 200 characters"})
    if file is not None and url:
        raise ValidationError({"url": "give a file or a link, not both"})
    attachment = Attachment(lead=lead, kind=kind, uploaded_by=actor if getattr(actor, "pk", None) else None)
    if file is not None:
        name, content_type = _file_checked(file)
        attachment.title = title or name
        attachment.content_type = content_type
        attachment.size = file.size or 0
        attachment.file.save(name, file, save=False)
    elif url:
        if len(url) > 500:
            raise ValidationError({"url": "at most 500 characters"})
        try:
            _http_url(url)
        except ValidationError:
            raise ValidationError({"url": "enter a full http:// or https:// link"}) from None
        attachment.url = url
        attachment.title = title or url[:200]
    else:
        raise ValidationError({"file": "choose a file or enter a link"})
    attachment.save()
    # Issue 6 item 3: images and PDFs are read by OCR in the background (a pending row now).
    evidence_text_request(attachment=attachment)
    audit_record(
        actor=actor,
        action="attachment.add",
        target=attachment,
        after=snapshot(attachment, ["lead", "kind", "title", "url", "content_type", "size"]),
    )
    return attachment


@transaction.atomic
def attachment_remove(*, actor: Any, attachment: Attachment, reason: str = "") -> Attachment:
    """Withdraw an attachment: it no longer counts for stage requirements and its share link stops
    working. The row and the file stay (facts are not deleted)."""
    _require_editable(actor, attachment.lead)
    if attachment.removed_at is not None:
        return attachment
    attachment.removed_at = clock.now()
    attachment.save(update_fields=["removed_at"])
    TrackedDocument.objects.filter(attachment=attachment, revoked_at__isnull=True).update(
        revoked_at=attachment.removed_at
    )
    audit_record(
        actor=actor,
        action="attachment.remove",
        target=attachment,
        before={"removed_at": None},
        after={"removed_at": attachment.removed_at.isoformat()},
        reason=reason[:2000],
    )
    return attachment


# ---- tracked documents --------------------------------------------------------------------------


def beat_interval_seconds() -> float:
    """How often the viewer page reports visible time (a setting so browser tests can shorten it)."""
    return float(getattr(settings, "SALESLOOP_VIEWER_BEAT_SECONDS", 5))


@transaction.atomic
def document_share(*, actor: Any, attachment: Attachment) -> TrackedDocument:
    """C3.4: a secret link to the attachment that the customer opens without logging in. Sharing an
    already shared attachment answers the same link; sharing it again after a revoke issues a new
    secret (the old link stays dead), and the openings recorded so far are kept."""
    _require_editable(actor, attachment.lead)
    if attachment.removed_at is not None:
        raise ValidationError({"attachment": "this attachment was withdrawn"})
    document = TrackedDocument.objects.select_for_update().filter(attachment=attachment).first()
    if document is not None and document.revoked_at is None:
        return document
    token = secrets.token_urlsafe(32)
    if document is None:
        document = TrackedDocument.objects.create(
            attachment=attachment,
            lead_id=attachment.lead_id,
            token=token,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
    else:
        document.token, document.revoked_at = token, None
        document.save(update_fields=["token", "revoked_at"])
    audit_record(actor=actor, action="document.share", target=document, after={"attachment": attachment.pk})
    return document


@transaction.atomic
def document_revoke(*, actor: Any, document: TrackedDocument) -> TrackedDocument:
    _require_editable(actor, document.attachment.lead)
    if document.revoked_at is None:
        document.revoked_at = clock.now()
        document.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action="document.revoke",
            target=document,
            before={"revoked_at": None},
            after={"revoked_at": document.revoked_at.isoformat()},
        )
    return document


@transaction.atomic
def document_view_open(*, document: TrackedDocument, user_agent: str = "") -> DocumentView:
    """Someone opened the share link: one view, with the secret its page beats with."""
    now = clock.now()
    view = DocumentView.objects.create(
        document=document,
        lead_id=document.lead_id,
        view_key=secrets.token_urlsafe(32),
        opened_at=now,
        last_beat_at=now,
        user_agent=user_agent[:200],
    )
    health.lead_health_changed(lead_id=document.lead_id)
    return view


@transaction.atomic
def document_view_beat(*, token: str, view_key: str, visible_ms: int) -> DocumentView | None:
    """The viewer page reports `visible_ms`, the total milliseconds it has been visible since it was
    opened. The view grows by the new part of that total, but never by more than the wall-clock time
    since the previous beat, nor by more than two beat intervals: a forged client cannot add time
    that did not pass, however it lies. Unknown key, wrong token or revoked link → None."""
    view = (
        DocumentView.objects.select_for_update()
        .select_related("document")
        .filter(view_key=view_key, document__token=token)
        .first()
    )
    if view is None or view.document.revoked_at is not None:
        return None
    now = clock.now()
    elapsed_ms = max(0, int((now - view.last_beat_at).total_seconds() * 1000))
    cap_ms = int(2 * beat_interval_seconds() * 1000)
    added = max(0, min(visible_ms - view.visible_ms, elapsed_ms, cap_ms))
    view.last_beat_at = now
    view.visible_ms += added
    seconds_before = view.seconds
    view.seconds = view.visible_ms // 1000
    view.save(update_fields=["last_beat_at", "visible_ms", "seconds"])
    if view.seconds != seconds_before:
        lead_id = view.lead_id
        transaction.on_commit(lambda: health.lead_health_changed(lead_id=lead_id))
    return view


# ---- touches ------------------------------------------------------------------------------------


def _moment_checked(field: str, moment: dt.datetime, *, past_only: bool) -> dt.datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=clock.org_tz())
    if not 2000 <= moment.year <= 2100:
        raise ValidationError({field: "give a date between 2000 and 2100"})
    moment = moment.astimezone(dt.UTC)
    if past_only and moment > clock.now() + dt.timedelta(minutes=1):
        raise ValidationError({field: "cannot be in the future"})
    return moment


def _contact_checked(lead: Lead, contact: Contact | None) -> Contact | None:
    if contact is None:
        return None
    if contact.pk != lead.contact_id and (
        lead.customer_id is None or contact.customer_id != lead.customer_id
    ):
        raise ValidationError({"contact_id": "not a contact of this lead's customer"})
    return contact


@transaction.atomic
def touch_record(
    *,
    actor: Any,
    lead: Lead,
    kind: str,
    direction: str,
    responded: bool | None = None,
    customer_initiated: bool = False,
    at: dt.datetime | None = None,
    note: str = "",
    contact: Contact | None = None,
) -> Touch:
    """C3.1 / C3.4: a call, message, e-mail or visit — outbound (did the customer respond: yes, no,
    not known yet) or inbound (a reply, or contact the customer started on its own)."""
    _require_editable(actor, lead)
    if kind not in TouchKind.values:
        raise ValidationError({"kind": f"one of {', '.join(TouchKind.values)}"})
    if direction not in TouchDirection.values:
        raise ValidationError({"direction": f"one of {', '.join(TouchDirection.values)}"})
    if direction == TouchDirection.INBOUND and responded is not None:
        raise ValidationError({"responded": "only an outbound touch has a response; leave it empty"})
    if direction == TouchDirection.OUTBOUND and customer_initiated:
        raise ValidationError({"customer_initiated": "only an inbound touch can be customer-initiated"})
    at = _moment_checked("at", at, past_only=True) if at is not None else clock.now()
    touch = Touch.objects.create(
        lead=lead,
        contact=_contact_checked(lead, contact),
        kind=kind,
        direction=direction,
        responded=responded,
        customer_initiated=customer_initiated,
        at=at,
        actor=actor if getattr(actor, "pk", None) else None,
        note=note.strip(),
    )
    health.lead_health_changed(lead_id=lead.pk)
    signals.lead_touches_changed.send(sender=Touch, lead_ids=[lead.pk])  # C9: the response rate
    return touch


@transaction.atomic
def touch_response_record(*, actor: Any, touch: Touch, responded: bool) -> Touch:
    """Whether the customer responded to an outbound touch, learned after it was recorded.

    The one documented exception to "touches are never edited": `responded` goes from unknown to
    known once (the outreach's outcome, like a meeting's), audited, with the moment it was learned.
    A known answer is not changed again: a wrong one is corrected by an administrator, in the open.
    """
    _require_editable(actor, touch.lead)
    if touch.direction != TouchDirection.OUTBOUND:
        raise ValidationError({"responded": "only an outbound touch has a response"})
    touch = Touch.objects.select_for_update().get(pk=touch.pk)
    if touch.responded is not None:
        if touch.responded == responded:
            return touch  # a replay answers the same
        raise ValidationError({"responded": "the response of this touch is already recorded"})
    touch.responded = responded
    touch.responded_recorded_at = clock.now()
    touch.save(update_fields=["responded", "responded_recorded_at"])
    audit_record(
        actor=actor,
        action="touch.responded",
        target=touch,
        before={"responded": None},
        after={"responded": responded},
    )
    health.lead_health_changed(lead_id=touch.lead_id)
    signals.lead_touches_changed.send(sender=Touch, lead_ids=[touch.lead_id])  # C9
    return touch


# ---- meetings -----------------------------------------------------------------------------------

MEETING_FIELDS = [
    "title",
    "scheduled_at",
    "planned_minutes",
    "online",
    "status",
    "attended_minutes",
    "minutes_text",
]


def _meeting_checked(meeting: Meeting) -> None:
    if not meeting.title.strip():
        raise ValidationError({"title": "give the meeting a title"})
    if len(meeting.title) > 200:
        raise ValidationError({"title": "at most 200 characters"})
    if not 1 <= meeting.planned_minutes <= 1440:
        raise ValidationError({"planned_minutes": "between 1 and 1440 minutes"})
    if meeting.status not in MeetingStatus.values:
        raise ValidationError({"status": f"one of {', '.join(MeetingStatus.values)}"})
    if meeting.status == MeetingStatus.ATTENDED:
        if meeting.attended_minutes is None:
            raise ValidationError({"attended_minutes": "how many minutes did the customer attend?"})
        if not 1 <= meeting.attended_minutes <= 1440:
            raise ValidationError({"attended_minutes": "between 1 and 1440 minutes"})
    elif meeting.attended_minutes not in (None, 0):
        raise ValidationError({"attended_minutes": "only an attended meeting has attended minutes"})
    else:
        meeting.attended_minutes = None
    has_happened = meeting.scheduled_at <= clock.now() + dt.timedelta(minutes=1)
    if meeting.status in (MeetingStatus.ATTENDED, MeetingStatus.NO_SHOW) and not has_happened:
        raise ValidationError({"status": "the meeting has not started yet"})


def _meeting_apply(meeting: Meeting, changes: dict[str, Any]) -> bool:
    changed = False
    for name, value in changes.items():
        if name not in MEETING_FIELDS:
            raise TypeError(f"not a meeting field: {name}")
        if name == "scheduled_at":
            value = _moment_checked("scheduled_at", value, past_only=False)
        if isinstance(value, str):
            value = value.strip()
        if getattr(meeting, name) != value:
            setattr(meeting, name, value)
            changed = True
    return changed


@transaction.atomic
def meeting_schedule(
    *,
    actor: Any,
    lead: Lead,
    title: str,
    scheduled_at: dt.datetime,
    planned_minutes: int = 60,
    online: bool = False,
    status: str = MeetingStatus.SCHEDULED,
    attended_minutes: int | None = None,
    minutes_text: str = "",
    system: str = "",
    external_id: str = "",
) -> Meeting:
    """C3.4: a meeting with the customer, by hand or pushed by a meeting system."""
    _require_editable(actor, lead)
    meeting = Meeting(
        lead=lead,
        system=system,
        external_id=external_id,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    _meeting_apply(
        meeting,
        {
            "title": title,
            "scheduled_at": scheduled_at,
            "planned_minutes": planned_minutes,
            "online": online,
            "status": status,
            "attended_minutes": attended_minutes,
            "minutes_text": minutes_text,
        },
    )
    _meeting_checked(meeting)
    meeting.updated_at = clock.now()
    meeting.save()
    audit_record(
        actor=actor, action="meeting.schedule", target=meeting, after=snapshot(meeting, MEETING_FIELDS)
    )
    if meeting.status != MeetingStatus.SCHEDULED:
        health.lead_health_changed(lead_id=lead.pk)
    return meeting


@transaction.atomic
def meeting_update(*, actor: Any, meeting: Meeting, **changes: Any) -> Meeting:
    """Reschedule, record the outcome (attended with minutes of attendance, no-show, cancelled) or the
    minutes (纪要). Audited with before and after; an unchanged push changes nothing."""
    _require_editable(actor, meeting.lead)
    meeting = Meeting.objects.select_for_update().select_related("lead").get(pk=meeting.pk)
    before = snapshot(meeting, MEETING_FIELDS)
    if not _meeting_apply(meeting, changes):
        return meeting
    if (
        "status" in changes
        and changes["status"] != MeetingStatus.ATTENDED
        and "attended_minutes" not in changes
    ):
        meeting.attended_minutes = None
    _meeting_checked(meeting)
    meeting.updated_at = clock.now()
    meeting.save()
    after = snapshot(meeting, MEETING_FIELDS)
    audit_record(actor=actor, action="meeting.update", target=meeting, before=before, after=after)
    if before["status"] != after["status"] or before["attended_minutes"] != after["attended_minutes"]:
        health.lead_health_changed(lead_id=meeting.lead_id)
    return meeting


def meeting_push(
    *, actor: Any, lead: Lead, system: str, external_id: str, **fields: Any
) -> tuple[Meeting, bool]:
    """A meeting system's push, idempotent on (system, external_id): the first creates the meeting,
    a replay or a later state updates the same one. Returns (meeting, created)."""
    system, external_id = system.strip(), external_id.strip()
    if not system:
        raise ValidationError({"system": "name the meeting system"})
    if not external_id:
        raise ValidationError({"external_id": "give the meeting system's id"})
    if len(system) > 30 or len(external_id) > 100:
        raise ValidationError({"external_id": "system at most 30, external id at most 100 characters"})
    for attempt in range(2):
        try:
            with transaction.atomic():
                existing = (
                    Meeting.objects.select_for_update()
                    .select_related("lead")
                    .filter(system=system, external_id=external_id)
                    .first()
                )
                if existing is not None:
                    if existing.lead_id != lead.pk:
                        raise ValidationError({"lead_id": "this meeting belongs to another lead"})
                    return meeting_update(actor=actor, meeting=existing, **fields), False
                if "title" not in fields or "scheduled_at" not in fields:
                    missing = "title" if "title" not in fields else "scheduled_at"
                    raise ValidationError({missing: "required for a meeting not seen before"})
                return meeting_schedule(
                    actor=actor, lead=lead, system=system, external_id=external_id, **fields
                ), True
        except IntegrityError:
            if attempt:  # a concurrent push created it twice in a row: not a race any more
                raise
    raise AssertionError("unreachable")


# ---- budget -------------------------------------------------------------------------------------


@transaction.atomic
def budget_milestone_record(
    *,
    actor: Any,
    lead: Lead,
    stage: str,
    amount_low: Decimal | None = None,
    amount_high: Decimal | None = None,
    note: str = "",
) -> BudgetMilestone:
    """C3.1 预算确认进度: the budget reached a stage (unknown → range known → confirmed → approved),
    with the range when known. The latest milestone is current; going back is a fact too."""
    _require_editable(actor, lead)
    if stage not in BudgetStage.values:
        raise ValidationError({"stage": f"one of {', '.join(BudgetStage.values)}"})
    for name, amount in (("amount_low", amount_low), ("amount_high", amount_high)):
        if amount is not None and not Decimal(0) <= amount < Decimal(10) ** 12:
            raise ValidationError({name: "between 0 and 999,999,999,999.99"})
    if amount_low is not None and amount_high is not None and amount_low > amount_high:
        raise ValidationError({"amount_high": "the high end must not be below the low end"})
    if stage == BudgetStage.RANGE_KNOWN and amount_low is None and amount_high is None:
        raise ValidationError({"amount_low": "a known range needs at least one end"})
    milestone = BudgetMilestone.objects.create(
        lead=lead,
        stage=stage,
        amount_low=amount_low,
        amount_high=amount_high,
        actor=actor if getattr(actor, "pk", None) else None,
        note=note.strip(),
    )
    health.lead_health_changed(lead_id=lead.pk)
    return milestone
