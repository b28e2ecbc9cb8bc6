"""Check-ins by API (SPEC C4.1, C4.3), mounted at `/api/v1/checkins`: resumable evidence uploads,
recording (idempotent per client key) and reading check-ins, a team's day for managers, evidence
files, and the configuration (action types, reminder hour). Thin: parse, scope, call the services
and selectors the pages call. A flat output schema reads the record's attributes of the same names
(`Schema.from_orm`; a derived field has its `resolve_` method)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated

from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpRequest
from django.urls import reverse
from ninja import Field, Query, Router, Schema, Status

from salesloop.accounts.models import Team
from salesloop.core import clock
from salesloop.core.schemas import RecordId, Text
from salesloop.crm.selectors import lead_get
from salesloop.engagement import checkin_selectors as selectors
from salesloop.engagement import checkin_services as services
from salesloop.engagement.checkin_models import (
    Checkin,
    CheckinActionType,
    CheckinReminderSetting,
    CheckinResult,
    EvidenceKind,
    EvidenceUpload,
)
from salesloop.engagement.responses import attachment_file_response

router = Router()  # mounted at /checkins

ClientKey = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Latitude = Annotated[Decimal, Field(ge=-90, le=90, max_digits=9, decimal_places=6)]
Longitude = Annotated[Decimal, Field(ge=-180, le=180, max_digits=9, decimal_places=6)]


# ---- uploads --------------------------------------------------------------------------------------


class UploadIn(Schema):
    client_key: ClientKey = Field(
        description="the client's id for this file: asking again answers the same slot"
    )
    kind: EvidenceKind
    file_name: Text(100)  # type: ignore[valid-type]
    size: int = Field(ge=1, le=services.EVIDENCE_MAX_BYTES, description="bytes")


class UploadOut(Schema):
    id: uuid.UUID
    client_key: str
    kind: str
    file_name: str
    size: int
    received: int = Field(description="bytes stored so far: send the next chunk from here")
    complete: bool
    checkin_id: int | None

    @staticmethod
    def resolve_complete(upload: EvidenceUpload) -> bool:
        return upload.completed_at is not None


@router.post(
    "/uploads",
    response={200: UploadOut, 201: UploadOut},
    summary="Open (or find again) an upload slot for one evidence file",
)
def upload_start(request: HttpRequest, payload: UploadIn) -> Status[UploadOut]:
    upload, created = services.evidence_upload_start(
        actor=request.auth,  # type: ignore[attr-defined]
        client_key=payload.client_key,
        kind=payload.kind.value,
        file_name=payload.file_name,
        size=payload.size,
    )
    return Status(201 if created else 200, UploadOut.from_orm(upload))


@router.get("/uploads/{upload_id}", response=UploadOut, summary="How much of an upload arrived")
def upload_detail(request: HttpRequest, upload_id: uuid.UUID) -> UploadOut:
    return UploadOut.from_orm(selectors.upload_get(user=request.auth, upload_id=upload_id))  # type: ignore[attr-defined]


class ChunkQuery(Schema):
    offset: int = Field(ge=0, le=services.EVIDENCE_MAX_BYTES, description="where these bytes start")


@router.put(
    "/uploads/{upload_id}",
    response=UploadOut,
    summary="Send the bytes of an upload from an offset (raw body, at most 1 MB per request)",
    description="Resume after a dropped connection by asking the slot for `received` and sending from "
    "there. Resending a chunk already stored is harmless.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def upload_chunk(request: HttpRequest, upload_id: uuid.UUID, query: Query[ChunkQuery]) -> UploadOut:
    user = request.auth  # type: ignore[attr-defined]
    upload = selectors.upload_get(user=user, upload_id=upload_id)
    if int(request.headers.get("Content-Length") or 0) > services.CHUNK_MAX_BYTES:
        raise ValidationError({"body": f"a chunk is at most {services.CHUNK_MAX_BYTES // 1024} KB"})
    data = request.body
    return UploadOut.from_orm(
        services.evidence_upload_chunk(actor=user, upload=upload, offset=query.offset, data=data)
    )


# ---- check-ins ------------------------------------------------------------------------------------


class CheckinIn(Schema):
    client_key: ClientKey = Field(description="generated once per check-in: a resubmit creates nothing twice")
    lead_id: RecordId
    action_type: Text(40) = Field(description="an action type's code, e.g. visit")  # type: ignore[valid-type]
    result_type: CheckinResult
    result_text: Text(2000)  # type: ignore[valid-type]
    at: dt.datetime | None = Field(default=None, description="when it happened (default now; ≤ 7 days ago)")
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    location_text: Text(200) = ""  # type: ignore[valid-type]
    evidence: list[uuid.UUID] = Field(default_factory=list, max_length=10, description="completed upload ids")
    to_stage: Text(40) | None = Field(  # type: ignore[valid-type]
        default=None, description="move the lead to this stage (code) in the same step, through its gate"
    )
    move_status: Annotated[str, Field(pattern=r"^(open|won|lost)$")] | None = None
    move_reason: Text(200) = ""  # type: ignore[valid-type]


class EvidenceOut(Schema):
    id: int
    attachment_id: int
    kind: str
    title: str
    content_type: str
    size: int
    file_url: str


class CheckinOut(Schema):
    id: int
    lead_id: int
    lead_title: str
    actor_id: int
    action_type: str
    action_label: str
    result_type: str
    result_text: str
    stage: str = Field(description="the stage (code) the lead was in")
    moved_to: str | None = Field(description="the stage (code) the check-in moved the lead to")
    stage_move_id: int | None
    at: dt.datetime
    day: dt.date
    latitude: Decimal | None
    longitude: Decimal | None
    location_text: str
    withdrawn_at: dt.datetime | None
    withdrawn_reason: str
    evidence: list[EvidenceOut]


def checkin_out(checkin: Checkin) -> CheckinOut:
    move = checkin.stage_move
    return CheckinOut(
        id=checkin.pk,
        lead_id=checkin.lead_id,
        lead_title=checkin.lead.title,
        actor_id=checkin.actor_id,
        action_type=checkin.action_type.code,
        action_label=checkin.action_type.label,
        result_type=checkin.result_type,
        result_text=checkin.result_text,
        stage=checkin.stage.code,
        moved_to=move.to_stage.code if move else None,
        stage_move_id=checkin.stage_move_id,
        at=checkin.at,
        day=checkin.day,
        latitude=checkin.latitude,
        longitude=checkin.longitude,
        location_text=checkin.location_text,
        withdrawn_at=checkin.withdrawn_at,
        withdrawn_reason=checkin.withdrawn_reason,
        evidence=[
            EvidenceOut(
                id=item.pk,
                attachment_id=item.attachment_id,
                kind=item.attachment.kind,
                title=item.attachment.title,
                content_type=item.attachment.content_type,
                size=item.attachment.size,
                file_url=reverse("api-v1:checkin_evidence_file", args=[item.pk]),
            )
            for item in checkin.evidence.all()
        ],
    )


@router.post(
    "",
    response={200: CheckinOut, 201: CheckinOut},
    summary="Check in: an action and its result on a lead, with evidence and an optional stage move",
    description="Idempotent on client_key: a resubmit answers 200 with the check-in made first. A stage "
    "move refused by its gate answers 422 with what is missing, and nothing is saved.",
)
def checkin_create(request: HttpRequest, payload: CheckinIn) -> Status[CheckinOut]:
    user = request.auth  # type: ignore[attr-defined]
    lead = lead_get(user=user, lead_id=payload.lead_id)
    checkin, created = services.checkin_record(
        actor=user,
        lead=lead,
        action_type=payload.action_type,
        result_type=payload.result_type.value,
        result_text=payload.result_text,
        client_key=payload.client_key,
        at=payload.at,
        latitude=payload.latitude,
        longitude=payload.longitude,
        location_text=payload.location_text,
        upload_ids=payload.evidence,
        to_stage=payload.to_stage,
        move_status=payload.move_status,
        move_reason=payload.move_reason,
    )
    return Status(
        201 if created else 200, checkin_out(selectors.checkin_get(user=user, checkin_id=checkin.pk))
    )


class CheckinPage(Schema):
    items: list[CheckinOut]
    next_cursor: str | None


class CheckinFilters(Schema):
    date: dt.date | None = Field(default=None, description="one day (organisation time)")
    rep: RecordId | None = Field(default=None, description="one rep's (user id)")
    cursor: Text(100) | None = None  # type: ignore[valid-type]
    limit: int = Field(default=50, ge=1, le=200)


@router.get("", response=CheckinPage, summary="Check-ins in your scope, newest first")
def checkin_list(request: HttpRequest, filters: Query[CheckinFilters]) -> CheckinPage:
    page = selectors.checkin_list(
        user=request.auth,  # type: ignore[attr-defined]
        day=filters.date,
        rep_id=filters.rep,
        cursor=filters.cursor,
        limit=filters.limit,
    )
    return CheckinPage(items=[checkin_out(c) for c in page.items], next_cursor=page.next_cursor)


class DailyQuery(Schema):
    date: dt.date | None = Field(default=None, description="default: today (organisation time)")
    team: RecordId | None = Field(default=None, description="one team's reps")


class CountOut(Schema):
    code: str
    label: str
    count: int


class RepDayOut(Schema):
    rep_id: int
    rep: str
    team: str | None
    checkins: int
    by_action: dict[str, int]
    by_result: dict[str, int]
    moved_lead_ids: list[int]
    checkin_ids: list[int]


class MovedOut(Schema):
    checkin_id: int
    lead_id: int
    lead_title: str
    rep_id: int
    from_stage: str
    to_stage: str


class DailyOut(Schema):
    date: dt.date
    team_id: int | None
    checkins: int
    reps: list[RepDayOut]
    reps_without_checkin: list[int] = Field(description="user ids of reps with no check-in that day")
    by_action: list[CountOut]
    by_result: list[CountOut]
    moved: list[MovedOut]


@router.get("/daily", response=DailyOut, summary="A team's day: who checked in, what happened, what moved")
def checkin_daily(request: HttpRequest, filters: Query[DailyQuery]) -> DailyOut:
    day = filters.date or clock.today_local()
    summary = selectors.team_day(user=request.auth, day=day, team_id=filters.team)  # type: ignore[attr-defined]
    return DailyOut(
        date=day,
        team_id=summary.team.pk if summary.team else None,
        checkins=summary.total,
        reps=[
            RepDayOut(
                rep_id=row.rep.pk,
                rep=str(row.rep),
                team=row.rep.team.name if row.rep.team else None,
                checkins=row.count,
                by_action=dict(row.by_action),
                by_result=dict(row.by_result),
                moved_lead_ids=[c.lead_id for c in row.moved],
                checkin_ids=[c.pk for c in row.checkins],
            )
            for row in summary.reps
        ],
        reps_without_checkin=[row.rep.pk for row in summary.without],
        by_action=[CountOut(code=k.code, label=k.label, count=n) for k, n in summary.action_counts()],
        by_result=[CountOut(code=v, label=label, count=n) for v, label, n in summary.result_counts()],
        moved=[
            MovedOut(
                checkin_id=c.pk,
                lead_id=c.lead_id,
                lead_title=c.lead.title,
                rep_id=c.actor_id,
                from_stage=c.stage.code,
                to_stage=c.stage_move.to_stage.code,  # type: ignore[union-attr]
            )
            for c in summary.moved
        ],
    )


@router.get(
    "/evidence/{evidence_id}/file",
    url_name="checkin_evidence_file",
    summary="Download a check-in's evidence file (404 outside your scope)",
)
def evidence_file(request: HttpRequest, evidence_id: RecordId) -> FileResponse:
    evidence = selectors.evidence_get(user=request.auth, evidence_id=evidence_id)  # type: ignore[attr-defined]
    return attachment_file_response(evidence.attachment, inline=False)


# ---- configuration --------------------------------------------------------------------------------


class ActionTypeIn(Schema):
    code: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,40}$")]
    label_zh: Text(40)  # type: ignore[valid-type]
    label_en: Text(60)  # type: ignore[valid-type]
    position: int = Field(default=100, ge=0, le=32767)


class ActionTypePatch(Schema):
    label_zh: Text(40) = None  # type: ignore[valid-type,assignment]
    label_en: Text(60) = None  # type: ignore[valid-type,assignment]
    position: int = Field(default=None, ge=0, le=32767)  # type: ignore[assignment]
    active: bool = None  # type: ignore[assignment]


class ActionTypeOut(Schema):
    id: int
    code: str
    label_zh: str
    label_en: str
    position: int
    active: bool


@router.get("/action-types", response=list[ActionTypeOut], summary="Action types (retired ones too)")
def action_type_list(request: HttpRequest) -> list[ActionTypeOut]:
    return [ActionTypeOut.from_orm(k) for k in selectors.action_types(include_retired=True)]


@router.post("/action-types", response={201: ActionTypeOut}, summary="Add an action type (administrators)")
def action_type_create(request: HttpRequest, payload: ActionTypeIn) -> Status[ActionTypeOut]:
    kind = services.action_type_create(actor=request.auth, **payload.model_dump())  # type: ignore[attr-defined]
    return Status(201, ActionTypeOut.from_orm(kind))


@router.patch(
    "/action-types/{action_type_id}",
    response=ActionTypeOut,
    summary="Relabel, reorder or retire an action type (administrators)",
)
def action_type_update(
    request: HttpRequest, action_type_id: RecordId, payload: ActionTypePatch
) -> ActionTypeOut:
    from django.http import Http404

    kind = CheckinActionType.objects.filter(pk=action_type_id).first()
    if kind is None:
        raise Http404("action type not found")
    changes = payload.model_dump(exclude_unset=True)
    if any(value is None for value in changes.values()):
        raise ValidationError({next(k for k, v in changes.items() if v is None): "must not be null"})
    user = request.auth  # type: ignore[attr-defined]
    return ActionTypeOut.from_orm(services.action_type_update(actor=user, action_type=kind, **changes))


class ReminderIn(Schema):
    hour: int = Field(ge=0, le=23, description="organisation time")
    enabled: bool = True
    team_id: RecordId | None = Field(default=None, description="a team's own hour; none: the organisation's")
    effective_at: dt.datetime | None = None


class ReminderOut(Schema):
    id: int
    team_id: int | None
    version: int
    hour: int
    enabled: bool
    effective_at: dt.datetime
    created_by_id: int | None


@router.get("/reminder-settings", response=list[ReminderOut], summary="Every version of the reminder hour")
def reminder_list(request: HttpRequest) -> list[ReminderOut]:
    return [ReminderOut.from_orm(s) for s in CheckinReminderSetting.objects.order_by("team_id", "-version")]


@router.post(
    "/reminder-settings", response={201: ReminderOut}, summary="Set the reminder hour (a new version)"
)
def reminder_set(request: HttpRequest, payload: ReminderIn) -> Status[ReminderOut]:
    team = None
    if payload.team_id is not None:
        team = Team.objects.filter(pk=payload.team_id).first()
        if team is None:
            raise ValidationError({"team_id": "no such team"})
    setting = services.reminder_setting_set(
        actor=request.auth,  # type: ignore[attr-defined]
        hour=payload.hour,
        enabled=payload.enabled,
        team=team,
        effective_at=payload.effective_at,
    )
    return Status(201, ReminderOut.from_orm(setting))


# ---- one check-in (after the fixed paths, which its id would otherwise shadow) ---------------------


@router.get("/{checkin_id}", response=CheckinOut, summary="A check-in with its evidence")
def checkin_detail(request: HttpRequest, checkin_id: RecordId) -> CheckinOut:
    return checkin_out(selectors.checkin_get(user=request.auth, checkin_id=checkin_id))  # type: ignore[attr-defined]


class WithdrawIn(Schema):
    reason: Text(200)  # type: ignore[valid-type]


@router.post("/{checkin_id}/withdraw", response=CheckinOut, summary="Withdraw a check-in made by mistake")
def checkin_withdraw(request: HttpRequest, checkin_id: RecordId, payload: WithdrawIn) -> CheckinOut:
    user = request.auth  # type: ignore[attr-defined]
    checkin = selectors.checkin_get(user=user, checkin_id=checkin_id)
    services.checkin_withdraw(actor=user, checkin=checkin, reason=payload.reason)
    return checkin_out(selectors.checkin_get(user=user, checkin_id=checkin_id))
