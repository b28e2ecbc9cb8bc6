"""Stage moves (SPEC C2.3): the only way a lead's stage or status changes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from salesloop.core import clock, explanations
from salesloop.core.audit import audit_record
from salesloop.crm.models import Lead, LeadStatus
from salesloop.crm.selectors import lead_editable
from salesloop.pipeline.models import Stage, StageMove


class StageMoveRefused(Exception):
    """A move the rules do not allow; `explanation` lists every problem (kind stage_move_refused)."""

    def __init__(self, explanation: dict[str, Any]) -> None:
        self.explanation = explanation
        super().__init__("; ".join(p["message"] for p in explanation["problems"]))


def stage_move_record(
    *,
    lead: Lead,
    actor: Any,
    from_stage: Stage | None,
    to_stage: Stage,
    from_status: str,
    to_status: str,
    at: dt.datetime,
    reason: str = "",
    note: str = "",
    filled: dict[str, Any] | None = None,
    dwell_seconds: int | None = None,
) -> StageMove:
    """Append the fact of a move with its explanation. Callers have validated it."""
    if from_stage is None:
        direction, skipped = "enter", []
    elif from_stage.pk == to_stage.pk:
        direction, skipped = "same", []
    else:
        direction = "forward" if to_stage.position > from_stage.position else "backward"
        low, high = sorted((from_stage.position, to_stage.position))
        skipped = (
            list(
                Stage.objects.filter(pipeline_id=to_stage.pipeline_id, position__gt=low, position__lt=high)
                .order_by("position")
                .values_list("code", flat=True)
            )
            if direction == "forward"
            else []
        )
    explanation = explanations.build(
        "stage_move",
        from_stage=from_stage.code if from_stage else None,
        to_stage=to_stage.code,
        direction=direction,
        skipped_stages=skipped,
        dwell_seconds=dwell_seconds,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
    )
    return StageMove.objects.create(
        lead=lead,
        from_stage=from_stage,
        to_stage=to_stage,
        from_status=from_status,
        to_status=to_status,
        actor=actor if getattr(actor, "pk", None) else None,
        at=at,
        reason=reason,
        note=note,
        filled=filled or {},
        explanation=explanation,
    )


@transaction.atomic
def lead_move_stage(
    *,
    actor: Any,
    lead: Lead,
    to_stage: Stage | None = None,
    status: str | None = None,
    reason: str = "",
    note: str = "",
) -> StageMove:
    """Move a lead to a stage and/or close or reopen it (SPEC C2.1, C2.3).

    Rules: the stage must belong to the lead's pipeline; a closed lead moves only by reopening it;
    winning means entering the last stage (合同签署); losing needs a reason. A refused move raises
    StageMoveRefused listing every problem, so the user fixes them in one go.
    """
    if not lead_editable(user=actor, lead=lead):
        raise PermissionDenied("you may view this lead but not move it")
    # Lock the row: two people moving one lead at once must not both read the same "from".
    lead = Lead.objects.select_for_update().select_related("stage").get(pk=lead.pk)
    from_stage, from_status = lead.stage, lead.status
    target_status = status or (LeadStatus.OPEN if from_status == LeadStatus.OPEN else from_status)
    target = to_stage or from_stage
    problems: list[dict[str, str]] = []
    last_stage = Stage.objects.filter(pipeline_id=lead.pipeline_id).order_by("-position").first()

    if target.pipeline_id != lead.pipeline_id:
        problems.append(
            {
                "code": "wrong_pipeline",
                "field": "to_stage",
                "message": f"stage {target.code!r} is not in this lead's pipeline",
            }
        )
    if target_status not in LeadStatus.values:
        problems.append(
            {
                "code": "bad_status",
                "field": "status",
                "message": f"status must be one of {', '.join(LeadStatus.values)}",
            }
        )
    if from_status != LeadStatus.OPEN and target_status != LeadStatus.OPEN:
        problems.append(
            {
                "code": "closed",
                "field": "status",
                "message": f"the lead is already {from_status}; reopen it first",
            }
        )
    if target_status == LeadStatus.WON and last_stage is not None and target.pk != last_stage.pk:
        problems.append(
            {
                "code": "won_needs_last_stage",
                "field": "to_stage",
                "message": f"a lead is won by entering {last_stage.code!r}",
            }
        )
    if target_status == LeadStatus.LOST and not reason.strip():
        problems.append(
            {"code": "lost_needs_reason", "field": "reason", "message": "say why the lead was lost"}
        )
    if target.pk == from_stage.pk and target_status == from_status:
        problems.append(
            {
                "code": "no_change",
                "field": "to_stage",
                "message": "the lead is already in this stage with this status",
            }
        )
    if len(reason) > 200:
        problems.append({"code": "too_long", "field": "reason", "message": "at most 200 characters"})
    if problems:
        raise StageMoveRefused(
            explanations.build("stage_move_refused", requested_stage=target.code, problems=problems)
        )

    now = clock.now()
    dwell = int((now - lead.stage_entered_at).total_seconds())
    move = stage_move_record(
        lead=lead,
        actor=actor,
        from_stage=from_stage,
        to_stage=target,
        from_status=from_status,
        to_status=target_status,
        at=now,
        reason=reason.strip(),
        note=note.strip(),
        dwell_seconds=dwell,
    )
    before = {"stage": from_stage.code, "status": from_status}
    if target.pk != from_stage.pk:
        lead.stage_entered_at = now
    lead.stage = target
    lead.status = target_status
    lead.lost_reason = reason.strip() if target_status == LeadStatus.LOST else ""
    lead.closed_at = now if target_status != LeadStatus.OPEN else None
    lead.save(update_fields=["stage", "status", "lost_reason", "closed_at", "stage_entered_at"])
    audit_record(
        actor=actor,
        action="lead.move",
        target=lead,
        before=before,
        after={"stage": target.code, "status": target_status},
        reason=reason,
    )
    return move


@transaction.atomic
def lead_projection_rebuild(*, lead_id: int) -> Lead:
    """Recompute stage, status and times from the moves alone (DESIGN.md rule 1)."""
    lead = Lead.objects.select_for_update().get(pk=lead_id)
    moves = list(StageMove.objects.filter(lead_id=lead_id).order_by("at", "id"))
    if not moves:
        return lead
    last = moves[-1]
    lead.stage_id = last.to_stage_id
    lead.status = last.to_status
    entered = last.at
    for move in reversed(moves):
        if move.to_stage_id != last.to_stage_id:
            break
        if move.from_stage_id != move.to_stage_id:
            entered = move.at
            break
    lead.stage_entered_at = entered
    lead.closed_at = last.at if last.to_status != LeadStatus.OPEN else None
    lead.lost_reason = last.reason if last.to_status == LeadStatus.LOST else ""
    lead.save(update_fields=["stage", "status", "stage_entered_at", "closed_at", "lost_reason"])
    return lead
