"""REST endpoints of intake: sources, inbound events (dead letters, retry), counts, duplicates, merges."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from salesloop.core import clock
from salesloop.core.schemas import RecordId, Text
from salesloop.crm.selectors import lead_get
from salesloop.intake import selectors, services
from salesloop.intake.models import EventStatus, InboundEvent, Source, SourceKind
from salesloop.pipeline.models import Pipeline

router = Router()
merge_router = Router()


class SourceOut(Schema):
    id: int
    kind: str
    name: str
    slug: str
    hook_url: str
    form_url: str | None
    field_mapping: dict[str, str]
    default_campaign: str
    enabled: bool
    pipeline_id: int | None
    wecom_corp_id: str
    has_secret: bool


class SourceCreatedOut(SourceOut):
    secret: str = Field(description="shown once, at creation; keep it in the channel's configuration")


class SourceIn(Schema):
    kind: SourceKind
    name: Text(80)  # type: ignore[valid-type]
    secret: Text(200) = ""  # type: ignore[valid-type]
    wecom_token: Text(100) = ""  # type: ignore[valid-type]
    wecom_aes_key: Text(43) = ""  # type: ignore[valid-type]
    wecom_corp_id: Text(64) = ""  # type: ignore[valid-type]
    field_mapping: dict[str, str | None] = Field(default_factory=dict)
    pipeline_id: RecordId | None = None
    default_campaign: Text(120) = ""  # type: ignore[valid-type]
    enabled: bool = True


class SourcePatch(Schema):
    name: Text(80) | None = None  # type: ignore[valid-type]
    secret: Text(200) | None = None  # type: ignore[valid-type]
    wecom_token: Text(100) | None = None  # type: ignore[valid-type]
    wecom_aes_key: Text(43) | None = None  # type: ignore[valid-type]
    wecom_corp_id: Text(64) | None = None  # type: ignore[valid-type]
    field_mapping: dict[str, str | None] | None = None
    default_campaign: Text(120) | None = None  # type: ignore[valid-type]
    enabled: bool | None = None


def source_out(source: Source) -> dict[str, Any]:
    base = settings.SITE_URL
    return {
        "id": source.pk,
        "kind": source.kind,
        "name": source.name,
        "slug": source.slug,
        "hook_url": f"{base}/hooks/{source.slug}",
        "form_url": f"{base}/f/{source.slug}" if source.kind == SourceKind.WEB_FORM else None,
        "field_mapping": source.field_mapping,
        "default_campaign": source.default_campaign,
        "enabled": source.enabled,
        "pipeline_id": source.pipeline_id,
        "wecom_corp_id": source.wecom_corp_id,
        "has_secret": bool(source.secret or source.wecom_aes_key),
    }


def _pipeline(pipeline_id: int | None) -> Pipeline | None:
    if pipeline_id is None:
        return None
    pipeline = Pipeline.objects.filter(pk=pipeline_id).first()
    if pipeline is None:
        raise ValidationError({"pipeline_id": "no such pipeline"})
    if not pipeline.stages.exists():  # a copy never published has no stages in force yet
        raise ValidationError({"pipeline_id": "this pipeline has no published version yet"})
    return pipeline


@router.get("/sources", response=list[SourceOut], summary="Configured channels")
def source_list(request: HttpRequest) -> list[dict[str, Any]]:
    return [source_out(s) for s in selectors.sources_visible_to(request.auth).order_by("id")]  # type: ignore[attr-defined]


@router.post("/sources", response={201: SourceCreatedOut}, summary="Configure a channel (admins)")
def source_create(request: HttpRequest, payload: SourceIn) -> Status[dict[str, Any]]:
    source = services.source_create(
        actor=request.auth,
        kind=payload.kind.value,
        name=payload.name,
        secret=payload.secret,  # type: ignore[attr-defined]
        wecom_token=payload.wecom_token,
        wecom_aes_key=payload.wecom_aes_key,
        wecom_corp_id=payload.wecom_corp_id,
        field_mapping=payload.field_mapping,
        pipeline=_pipeline(payload.pipeline_id),  # type: ignore[arg-type]
        default_campaign=payload.default_campaign,
        enabled=payload.enabled,
    )
    return Status(201, {**source_out(source), "secret": source.secret})


@router.get("/sources/{source_id}", response=SourceOut)
def source_detail(request: HttpRequest, source_id: RecordId) -> dict[str, Any]:
    return source_out(selectors.source_get(user=request.auth, source_id=source_id))  # type: ignore[attr-defined]


@router.patch("/sources/{source_id}", response=SourceOut, summary="Change a channel, e.g. fix its mapping")
def source_update(request: HttpRequest, source_id: RecordId, payload: SourcePatch) -> dict[str, Any]:
    source = selectors.source_get(user=request.auth, source_id=source_id)  # type: ignore[attr-defined]
    changes = payload.dict(exclude_unset=True)
    for key, value in changes.items():
        if value is None:
            raise ValidationError({key: "cannot be null"})
    return source_out(services.source_update(actor=request.auth, source=source, **changes))  # type: ignore[attr-defined]


class EventOut(Schema):
    id: int
    source_id: int
    source_name: str
    external_id: str
    received_at: dt.datetime
    status: str
    error: str
    lead_id: int | None
    campaign: str
    attempts: int
    processed_at: dt.datetime | None


class EventDetailOut(EventOut):
    body: str
    headers: dict[str, Any]
    normalised: dict[str, Any] | None


class EventPage(Schema):
    items: list[EventOut]
    next_cursor: str | None


class EventQuery(Schema):
    status: EventStatus | None = None
    source_id: RecordId | None = None
    cursor: Text(200) | None = None  # type: ignore[valid-type]
    limit: int | None = Field(default=None, ge=1, le=200)


def event_out(event: InboundEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "source_id": event.source_id,
        "source_name": event.source.name,
        "external_id": event.external_id,
        "received_at": event.received_at,
        "status": event.status,
        "error": event.error,
        "lead_id": event.lead_id,
        "campaign": event.campaign,
        "attempts": event.attempts,
        "processed_at": event.processed_at,
    }


@router.get("/events", response=EventPage, summary="Inbound events; `status=failed` is the dead-letter list")
def event_list(request: HttpRequest, query: Query[EventQuery]) -> dict[str, Any]:
    page = selectors.event_list(
        user=request.auth,
        status=query.status.value if query.status else None,  # type: ignore[attr-defined]
        source_id=query.source_id,
        cursor=query.cursor,
        limit=query.limit or settings.SALESLOOP_PAGE_SIZE,
    )
    return {"items": [event_out(e) for e in page.items], "next_cursor": page.next_cursor}


@router.get("/events/{event_id}", response=EventDetailOut, summary="One event with its raw payload")
def event_detail(request: HttpRequest, event_id: RecordId) -> dict[str, Any]:
    from salesloop.core.audit import personal_data_access_record

    event = selectors.event_get(user=request.auth, event_id=event_id)  # type: ignore[attr-defined]
    # The raw payload holds phone numbers as sent: reading it is an unmasked view, and logged.
    personal_data_access_record(actor=request.auth, subject=event, fields=["body"], channel="api")  # type: ignore[attr-defined]
    return {**event_out(event), "body": event.body, "headers": event.headers, "normalised": event.normalised}


@router.post("/events/{event_id}/retry", response=EventOut, summary="Process a failed event again")
def event_retry(request: HttpRequest, event_id: RecordId) -> dict[str, Any]:
    event = selectors.event_get(user=request.auth, event_id=event_id)  # type: ignore[attr-defined]
    return event_out(services.event_retry(actor=request.auth, event=event))  # type: ignore[attr-defined]


class CountsOut(Schema):
    received: int
    created: int
    touch: int
    failed: int


class SourceCountsOut(Schema):
    source_id: int
    source_name: str
    kind: str
    today: CountsOut
    days30: CountsOut


@router.get("/stats", response=list[SourceCountsOut], summary="Per source: today and over 30 days")
def source_stats(request: HttpRequest) -> list[dict[str, Any]]:
    return [
        {
            "source_id": c.source.pk,
            "source_name": c.source.name,
            "kind": c.source.kind,
            "today": c.today,
            "days30": c.days30,
        }
        for c in selectors.source_counts(user=request.auth)  # type: ignore[attr-defined]
    ]


class DuplicateOut(Schema):
    source_id: int
    source_name: str
    campaign: str
    received: int
    created: int
    touches: int
    failed: int
    duplicate_rate: float


class DuplicateQuery(Schema):
    days: int = Field(default=30, ge=1, le=3660)


@router.get("/duplicates", response=list[DuplicateOut], summary="Duplicate rate per source and campaign")
def duplicates(request: HttpRequest, query: Query[DuplicateQuery]) -> list[dict[str, Any]]:
    until = clock.now()
    rows = selectors.duplicate_report(
        user=request.auth, since=until - dt.timedelta(days=query.days), until=until
    )  # type: ignore[attr-defined]
    return [{**r.__dict__, "duplicate_rate": r.duplicate_rate} for r in rows]


class SuggestionOut(Schema):
    id: int
    lead_id: int
    candidate_id: int
    score: float
    explanation: dict[str, Any]


class SuggestionPage(Schema):
    items: list[SuggestionOut]
    next_cursor: str | None


class PageQuery(Schema):
    cursor: Text(200) | None = None  # type: ignore[valid-type]
    limit: int | None = Field(default=None, ge=1, le=200)


@router.get("/merge-suggestions", response=SuggestionPage, summary="Leads that look like one person")
def suggestion_list(request: HttpRequest, query: Query[PageQuery]) -> dict[str, Any]:
    page = selectors.merge_suggestions(
        user=request.auth,
        cursor=query.cursor,  # type: ignore[attr-defined]
        limit=query.limit or settings.SALESLOOP_PAGE_SIZE,
    )
    return {
        "items": [
            {
                "id": s.pk,
                "lead_id": s.lead_id,
                "candidate_id": s.candidate_id,
                "score": float(s.score),
                "explanation": s.explanation,
            }
            for s in page.items
        ],
        "next_cursor": page.next_cursor,
    }


class MergeIn(Schema):
    merged_lead_id: RecordId
    reason: Text(200) = ""  # type: ignore[valid-type]


class UnmergeIn(Schema):
    reason: Text(200) = ""  # type: ignore[valid-type]


class MergeOut(Schema):
    lead_id: int
    merged_into: int | None


@merge_router.post("/{lead_id}/merge", response=MergeOut, summary="Fold another lead into this one")
def lead_merge(request: HttpRequest, lead_id: RecordId, payload: MergeIn) -> dict[str, Any]:
    user = request.auth  # type: ignore[attr-defined]
    survivor = lead_get(user=user, lead_id=lead_id)
    merged = lead_get(user=user, lead_id=payload.merged_lead_id)
    services.lead_merge(actor=user, survivor=survivor, merged=merged, reason=payload.reason)
    return {"lead_id": merged.pk, "merged_into": survivor.pk}


@merge_router.post("/{lead_id}/unmerge", response=MergeOut, summary="Undo the merge of this lead")
def lead_unmerge(request: HttpRequest, lead_id: RecordId, payload: UnmergeIn) -> dict[str, Any]:
    user = request.auth  # type: ignore[attr-defined]
    merged = services.lead_unmerge(
        actor=user, merged=lead_get(user=user, lead_id=lead_id), reason=payload.reason
    )
    return {"lead_id": merged.pk, "merged_into": merged.merged_into_id}


class ArrivalOut(Schema):
    event_id: int
    source_id: int
    source_name: str
    kind: str
    received_at: dt.datetime
    status: str
    campaign: str
    message: str
    transcript: str
    lead_id: int | None


@merge_router.get("/{lead_id}/arrivals", response=list[ArrivalOut], summary="Every inbound arrival of a lead")
def lead_arrivals(request: HttpRequest, lead_id: RecordId) -> list[dict[str, Any]]:
    """The first arrival and every touch (回流), with the message or call transcript each carried;
    includes the arrivals of leads merged into this one."""
    lead = lead_get(user=request.auth, lead_id=lead_id)  # type: ignore[attr-defined]
    return [
        {
            "event_id": e.pk,
            "source_id": e.source_id,
            "source_name": e.source.name,
            "kind": e.source.kind,
            "received_at": e.received_at,
            "status": e.status,
            "campaign": e.campaign,
            "message": (e.normalised or {}).get("message", ""),
            "transcript": (e.normalised or {}).get("transcript", ""),
            "lead_id": e.lead_id,
        }
        for e in selectors.lead_arrivals(lead=lead)
    ]
