"""Stage moves (SPEC C2.3): the only way a lead's stage or status changes."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404

from salesloop.core import clock, explanations
from salesloop.core.audit import audit_record
from salesloop.crm import signals
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
    direction: str | None = None,
    skipped: list[str] | None = None,
) -> StageMove:
    """Append the fact of a move with its explanation. Callers have validated it.

    `direction` and `skipped` are worked out here from positions in the target's version unless the
    caller (lead_move_stage, which maps stages across versions by code) passes them."""
    if direction is None:
        if from_stage is None:
            direction, skipped = "enter", []
        elif from_stage.code == to_stage.code:
            direction, skipped = "same", []
        else:
            direction = "forward" if to_stage.position > from_stage.position else "backward"
            low, high = sorted((from_stage.position, to_stage.position))
            skipped = (
                list(
                    Stage.objects.filter(version_id=to_stage.version_id, position__gt=low, position__lt=high)
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
        skipped_stages=skipped or [],
        dwell_seconds=dwell_seconds,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
    )
    move = StageMove.objects.create(
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
    # C5 funnel rollups and C9 indicator rows, in step, before the lead row takes the move.
    signals.lead_stage_moved.send(
        sender=StageMove,
        lead=lead,
        move=move,
        from_code=from_stage.code if from_stage else None,
        direction=direction,
    )
    return move


def entry_explanation_json(stage_code: str, status: str) -> str:
    """A new lead's entry into its first stage as `stage_move_record` explains it (no stage before,
    nothing skipped), as JSON text: the bulk paths — a webhook batch, an import chunk — encode it
    once per stage for every lead entering it."""
    return json.dumps(
        explanations.build(
            "stage_move",
            from_stage=None,
            to_stage=stage_code,
            direction="enter",
            skipped_stages=[],
            dwell_seconds=None,
            from_status="",
            to_status=status,
            reason="",
        ),
        ensure_ascii=False,
    )


def _problem(code: str, field: str, message: str) -> dict[str, str]:
    return {"code": code, "field": field, "message": message}


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
    """Move a lead to a stage and/or close or reopen it (SPEC C2.1–C2.3, C10.2).

    The only writer of `Lead.stage` after creation, for pages, API, bulk moves and admins alike.
    The target is a stage of the pipeline's version in force; the lead's current stage (perhaps of
    an older version) is placed in it by its code. Rules: a forward move must meet the entry
    requirements of the target and of every stage it skips (docs/pipelines.md); a backward move
    needs a reason; a closed lead moves only by reopening it; winning means entering the last stage;
    losing needs a reason. A refused move raises StageMoveRefused listing every problem — each
    missing field or attachment with its label — so the user fixes them in one go.
    """
    from salesloop.pipeline.requirements import (
        filled_record,
        lead_facts,
        missing_problems,
        requirements_check,
    )

    if not lead_editable(user=actor, lead=lead):
        raise PermissionDenied("you may view this lead but not move it")
    # Lock the row: two people moving one lead at once must not both read the same "from".
    lead = (
        Lead.objects.select_for_update(of=("self",))  # the lead row only, not the joined ones
        .select_related("stage", "customer__province", "contact")
        .get(pk=lead.pk)
    )
    from_stage, from_status = lead.stage, lead.status
    live = list(Stage.objects.filter(pipeline_id=lead.pipeline_id).order_by("position"))
    by_code = {stage.code: stage for stage in live}
    placed = by_code.get(from_stage.code)  # where the lead stands in the version in force
    target_status = status or (LeadStatus.OPEN if from_status == LeadStatus.OPEN else from_status)
    target = to_stage or placed or from_stage
    problems: list[dict[str, str]] = []
    last_stage = live[-1] if live else None

    if target.pipeline_id != lead.pipeline_id or target.pk not in {s.pk for s in live}:
        problems.append(
            _problem(
                "wrong_pipeline",
                "to_stage",
                f"stage {target.code!r} is not in the version in force of this lead's pipeline"
                if to_stage is not None
                else f"the lead's stage {from_stage.code!r} is no longer in its pipeline; choose a stage",
            )
        )
    if target_status not in LeadStatus.values:
        problems.append(
            _problem("bad_status", "status", f"status must be one of {', '.join(LeadStatus.values)}")
        )
    if from_status != LeadStatus.OPEN and target_status != LeadStatus.OPEN:
        problems.append(_problem("closed", "status", f"the lead is already {from_status}; reopen it first"))
    if target_status == LeadStatus.WON and last_stage is not None and target.pk != last_stage.pk:
        problems.append(
            _problem("won_needs_last_stage", "to_stage", f"a lead is won by entering {last_stage.code!r}")
        )
    if target_status == LeadStatus.LOST and not reason.strip():
        problems.append(_problem("lost_needs_reason", "reason", "say why the lead was lost"))
    if target.code == from_stage.code and target_status == from_status:
        problems.append(
            _problem("no_change", "to_stage", "the lead is already in this stage with this status")
        )
    if len(reason) > 200:
        problems.append(_problem("too_long", "reason", "at most 200 characters"))

    # Direction in the version in force. A lead whose stage code is gone from it is placed before
    # the first stage: any move is forward and must meet every requirement up to the target.
    if target.code == from_stage.code:
        direction, gated = "same", []
    elif placed is None or target.position > placed.position:
        direction = "forward"
        start = placed.position if placed is not None else 0
        gated = [s for s in live if start < s.position <= target.position]
    else:
        direction, gated = "backward", []
        if not reason.strip():
            problems.append(
                _problem("backward_needs_reason", "reason", "say why the lead moves back to an earlier stage")
            )
    states = requirements_check(gated, lead_facts(lead, gated)) if gated else []
    problems.extend(missing_problems(states))
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
        filled=filled_record(states),
        dwell_seconds=dwell,
        direction=direction,
        skipped=[s.code for s in gated[:-1]],
    )
    before = {"stage": from_stage.code, "stage_id": from_stage.pk, "status": from_status}
    if target.code != from_stage.code:
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
        after={"stage": target.code, "stage_id": target.pk, "status": target_status},
        reason=reason,
    )
    return move


@transaction.atomic
def lead_projection_rebuild(*, lead_id: int) -> Lead:
    """Recompute stage, status and times from the moves alone (DESIGN.md rule 1)."""
    lead = Lead.objects.select_for_update().get(pk=lead_id)
    moves = list(
        StageMove.objects.filter(lead_id=lead_id)
        .select_related("from_stage", "to_stage")
        .order_by("at", "id")
    )
    if not moves:
        return lead
    last = moves[-1]
    lead.stage_id = last.to_stage_id
    lead.status = last.to_status
    entered = last.at
    # Stages are compared by code: a move within one stage may land on its row of a newer version.
    for move in reversed(moves):
        if move.to_stage.code != last.to_stage.code:
            break
        if move.from_stage is None or move.from_stage.code != move.to_stage.code:
            entered = move.at
            break
    lead.stage_entered_at = entered
    lead.closed_at = last.at if last.to_status != LeadStatus.OPEN else None
    lead.lost_reason = last.reason if last.to_status == LeadStatus.LOST else ""
    lead.save(update_fields=["stage", "status", "stage_entered_at", "closed_at", "lost_reason"])
    return lead


BULK_MOVE_LIMIT = 200


@dataclass(frozen=True)
class BulkMoveResult:
    lead_id: int
    moved: bool
    move: StageMove | None = None
    problems: tuple[dict[str, str], ...] = ()


def leads_move_bulk(
    *,
    actor: Any,
    lead_ids: list[int],
    to_stage_code: str | None,
    status: str | None = None,
    reason: str = "",
    note: str = "",
) -> list[BulkMoveResult]:
    """Move many leads to one stage (by code) through `lead_move_stage`, each in its own
    transaction: what passes moves, what is refused says why, per lead (SPEC C2.2). A lead out of
    the actor's scope is reported as not found, exactly like an id that does not exist."""
    from salesloop.crm.selectors import lead_get

    if len(lead_ids) > BULK_MOVE_LIMIT:
        raise ValidationError({"lead_ids": f"at most {BULK_MOVE_LIMIT} leads at a time"})
    results = []
    for lead_id in dict.fromkeys(lead_ids):  # each lead once, in the order given
        try:
            lead = lead_get(user=actor, lead_id=lead_id)
        except Http404:
            problem = {"code": "not_found", "field": "lead_ids", "message": "no such lead in your scope"}
            results.append(BulkMoveResult(lead_id, False, problems=(problem,)))
            continue
        target = None
        if to_stage_code:
            target = Stage.objects.filter(pipeline_id=lead.pipeline_id, code=to_stage_code).first()
            if target is None:
                problem = {
                    "code": "wrong_pipeline",
                    "field": "to_stage",
                    "message": f"no stage {to_stage_code!r} in the version in force of this lead's pipeline",
                }
                results.append(BulkMoveResult(lead_id, False, problems=(problem,)))
                continue
        try:
            move = lead_move_stage(
                actor=actor, lead=lead, to_stage=target, status=status, reason=reason, note=note
            )
        except StageMoveRefused as refused:
            results.append(BulkMoveResult(lead_id, False, problems=tuple(refused.explanation["problems"])))
        except PermissionDenied:
            problem = {
                "code": "not_editable",
                "field": "lead_ids",
                "message": "you may view this lead but not move it",
            }
            results.append(BulkMoveResult(lead_id, False, problems=(problem,)))
        else:
            results.append(BulkMoveResult(lead_id, True, move=move))
    return results
