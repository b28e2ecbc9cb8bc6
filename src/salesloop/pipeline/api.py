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
from salesloop.pipeline.services import BULK_MOVE_LIMIT, lead_move_stage, leads_move_bulk

router = Router()
# POST /leads/moves: mounted before the leads router, whose /leads/{lead_id} would otherwise match it.
bulk_router = Router()


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
    filled: dict[str, Any] = Field(description="what met the entry requirements at the time of the move")
    explanation: dict[str, Any]


class TimelineOut(Schema):
    lead_id: int
    stage: str
    status: str
    dwell_days: dict[str, float] = Field(description="days spent in each stage, summed over visits")
    items: list[MoveOut]


def move_out(move: StageMove) -> MoveOut:
    """A move with its stages' codes (the stages may be of an older version of the pipeline)."""
    actor = move.actor
    return MoveOut(
        id=move.pk,
        at=move.at,
        from_stage=move.from_stage.code if move.from_stage_id else None,
        to_stage=move.to_stage.code,
        from_status=move.from_status,
        to_status=move.to_status,
        actor=ActorRef(id=actor.pk, username=actor.username, display_name=str(actor)) if actor else None,
        reason=move.reason,
        note=move.note,
        filled=move.filled,
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
    return Status(201, move_out(move))


@router.get("/{lead_id}/timeline", response=TimelineOut, summary="What happened to a lead, oldest first")
def lead_timeline_get(request: HttpRequest, lead_id: RecordId) -> TimelineOut:
    lead = lead_get(user=request.auth, lead_id=lead_id)  # type: ignore[attr-defined]
    moves = lead_timeline(lead=lead)
    codes = {m.to_stage_id: m.to_stage.code for m in moves}
    dwell = lead_stage_dwell(lead=lead, moves=moves, now=clock.now())
    dwell_days: dict[str, float] = {}
    for stage_id, days in dwell.items():  # one stage code may have rows in several versions
        dwell_days[codes[stage_id]] = round(dwell_days.get(codes[stage_id], 0.0) + days, 2)
    return TimelineOut(
        lead_id=lead.pk,
        stage=lead.stage.code,
        status=lead.status,
        dwell_days=dwell_days,
        items=[move_out(m) for m in moves],
    )


class BulkMoveIn(Schema):
    lead_ids: list[RecordId] = Field(min_length=1, max_length=BULK_MOVE_LIMIT)
    to_stage: Text(40) | None = Field(default=None, description="stage code; omit to change only the status")  # type: ignore[valid-type]
    status: LeadStatus | None = None
    reason: Text(200) = ""  # type: ignore[valid-type]
    note: Text(2000) = ""  # type: ignore[valid-type]


class BulkProblem(Schema):
    code: str
    field: str
    message: str
    stage: str | None = None
    label_zh: str | None = None
    label_en: str | None = None


class BulkMoveItem(Schema):
    lead_id: int
    moved: bool
    move: MoveOut | None
    problems: list[BulkProblem] = Field(description="why the lead was not moved: every missing item")


class BulkMoveOut(Schema):
    moved: int
    refused: int
    results: list[BulkMoveItem]


@bulk_router.post(
    "/moves",
    response=BulkMoveOut,
    summary="Move many leads at once: those that pass move, the others say what is missing",
)
def leads_move(request: HttpRequest, payload: BulkMoveIn) -> BulkMoveOut:
    results = leads_move_bulk(
        actor=request.auth,  # type: ignore[attr-defined]
        lead_ids=list(payload.lead_ids),
        to_stage_code=payload.to_stage,
        status=payload.status.value if payload.status else None,
        reason=payload.reason,
        note=payload.note,
    )
    items = [
        BulkMoveItem(
            lead_id=r.lead_id,
            moved=r.moved,
            move=move_out(r.move) if r.move else None,
            problems=[BulkProblem(**p) for p in r.problems],
        )
        for r in results
    ]
    moved = sum(1 for r in results if r.moved)
    return BulkMoveOut(moved=moved, refused=len(results) - moved, results=items)
