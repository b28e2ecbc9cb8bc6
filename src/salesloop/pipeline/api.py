"""Stage moves and the timeline of a lead (SPEC C2.3)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from salesloop.core import clock
from salesloop.core.schemas import RecordId, Text
from salesloop.crm.models import LeadStatus
from salesloop.crm.selectors import lead_get
from salesloop.pipeline.models import Stage, StageMove
from salesloop.pipeline.selectors import lead_stage_dwell, lead_timeline
from salesloop.pipeline.services import lead_move_stage

router = Router()


class MoveIn(Schema):
    to_stage: Text(40) | None = Field(default=None, description="stage code; omit to change only the status")  # type: ignore[valid-type]
    status: LeadStatus | None = Field(default=None, description="won, lost (needs a reason) or open (reopen)")
    reason: Text(200) = ""  # type: ignore[valid-type]
    note: Text(2000) = ""  # type: ignore[valid-type]


class ActorRef(Schema):
    id: int
    username: str
    display_name: str


class MoveOut(Schema):
    id: int
    kind: str = "stage_move"
    at: dt.datetime
    from_stage: str | None
    to_stage: str
    from_status: str
    to_status: str
    actor: ActorRef | None
    reason: str
    note: str
    explanation: dict[str, Any]


class TimelineOut(Schema):
    lead_id: int
    stage: str
    status: str
    dwell_days: dict[str, float] = Field(description="days spent in each stage, summed over visits")
    items: list[MoveOut]


def move_out(move: StageMove, stage_codes: dict[int, str]) -> MoveOut:
    actor = move.actor
    return MoveOut(
        id=move.pk,
        at=move.at,
        from_stage=stage_codes.get(move.from_stage_id) if move.from_stage_id else None,
        to_stage=stage_codes[move.to_stage_id],
        from_status=move.from_status,
        to_status=move.to_status,
        actor=ActorRef(id=actor.pk, username=actor.username, display_name=str(actor)) if actor else None,
        reason=move.reason,
        note=move.note,
        explanation=move.explanation,
    )


@router.post(
    "/{lead_id}/moves", response={201: MoveOut}, summary="Move a lead to a stage, win, lose or reopen it"
)
def lead_move(request: HttpRequest, lead_id: RecordId, payload: MoveIn) -> Status[MoveOut]:
    user = request.auth  # type: ignore[attr-defined]
    lead = lead_get(user=user, lead_id=lead_id)
    stages = {s.code: s for s in Stage.objects.filter(pipeline_id=lead.pipeline_id)}
    to_stage = None
    if payload.to_stage is not None:
        to_stage = stages.get(payload.to_stage)
        if to_stage is None:
            raise ValidationError({"to_stage": f"no stage {payload.to_stage!r} in this lead's pipeline"})
    move = lead_move_stage(
        actor=user,
        lead=lead,
        to_stage=to_stage,
        status=payload.status.value if payload.status else None,
        reason=payload.reason,
        note=payload.note,
    )
    return Status(201, move_out(move, {s.pk: s.code for s in stages.values()}))


@router.get("/{lead_id}/timeline", response=TimelineOut, summary="What happened to a lead, oldest first")
def lead_timeline_get(request: HttpRequest, lead_id: RecordId) -> TimelineOut:
    lead = lead_get(user=request.auth, lead_id=lead_id)  # type: ignore[attr-defined]
    moves = lead_timeline(lead=lead)
    codes = {s.pk: s.code for s in Stage.objects.filter(pipeline_id=lead.pipeline_id)}
    dwell = lead_stage_dwell(lead=lead, moves=moves, now=clock.now())
    return TimelineOut(
        lead_id=lead.pk,
        stage=lead.stage.code,
        status=lead.status,
        dwell_days={codes[stage_id]: round(days, 2) for stage_id, days in dwell.items()},
        items=[move_out(m, codes) for m in moves],
    )
