from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from salesloop.core.rows import Question, model_rows_together
from salesloop.crm.models import Lead
from salesloop.pipeline.models import Pipeline, Stage, StageMove
from salesloop.pipeline.requirements import ItemState, lead_facts, requirements_check


def pipeline_default() -> Pipeline:
    pipeline = Pipeline.objects.filter(is_default=True).first()
    if pipeline is None:
        raise ImproperlyConfigured("no default pipeline: run `salesloop migrate`")
    return pipeline


def pipeline_first_stage(pipeline: Pipeline | None) -> Stage | None:
    """The stage a new lead enters: the first of the given pipeline, or of the default one.

    One query, written out (`core.rows`): every batch of new leads asks it, and the ORM — a raw
    queryset too — spends longer building it than the database spends answering it."""
    return pipeline_first_stage_answered(
        pipeline, model_rows_together([pipeline_first_stage_question(pipeline)])[0]
    )


def pipeline_first_stage_question(pipeline: Pipeline | None) -> Question:
    """`pipeline_first_stage`'s question, for a caller that asks it with its own (a webhook batch)."""
    if pipeline is None:
        pipelines = connection.ops.quote_name(Pipeline._meta.db_table)
        where = f"pipeline_id IN (SELECT id FROM {pipelines} WHERE is_default = %s)"  # noqa: S608 -- our table
        return Question(Stage, where, [True], order_by="position", limit=1)
    return Question(Stage, "pipeline_id = %s", [pipeline.pk], order_by="position", limit=1)


def pipeline_first_stage_answered(pipeline: Pipeline | None, rows: list[Stage]) -> Stage | None:
    first = rows[0] if rows else None
    if first is not None and pipeline is not None:
        first.pipeline = pipeline
    return first


def pipeline_stages(pipeline_id: int) -> list[Stage]:
    return list(Stage.objects.filter(pipeline_id=pipeline_id).order_by("position"))


def lead_timeline(*, lead: Lead) -> list[StageMove]:
    """The lead's moves, oldest first (the caller has already scoped the lead)."""
    return list(
        StageMove.objects.filter(lead_id=lead.pk)
        .select_related("from_stage", "to_stage", "actor")
        .order_by("at", "id")
    )


def lead_stage_dwell(*, lead: Lead, moves: list[StageMove], now: Any) -> dict[int, float]:
    """Days spent in each stage, from the moves (a lead may return to a stage; dwell adds up)."""
    dwell: dict[int, float] = {}
    for current, following in zip(moves, [*moves[1:], None], strict=True):
        end = following.at if following is not None else (lead.closed_at or now)
        days = max((end - current.at).total_seconds(), 0) / 86400
        dwell[current.to_stage_id] = dwell.get(current.to_stage_id, 0.0) + days
    return dwell


@dataclass(frozen=True)
class StageNeeds:
    """What entering a stage needs of a lead, each requirement met or not (SPEC C2.2)."""

    stage: Stage
    items: list[ItemState]

    @property
    def ready(self) -> bool:
        return all(item.met for item in self.items)


def lead_stage_placed(lead: Lead, stages: list[Stage]) -> Stage | None:
    """The lead's stage in the version in force (by code), or None when that code is gone from it."""
    return next((stage for stage in stages if stage.code == lead.stage.code), None)


def lead_next_stage_needs(*, lead: Lead, stages: list[Stage]) -> StageNeeds | None:
    """The next stage in force after the lead's, with its requirements checked (two queries), or
    None when the lead is closed, in the last stage, or in a stage the version in force dropped."""
    from salesloop.crm.models import LeadStatus

    placed = lead_stage_placed(lead, stages)
    if lead.status != LeadStatus.OPEN or placed is None:
        return None
    following = [stage for stage in stages if stage.position > placed.position]
    if not following:
        return None
    return StageNeeds(
        stage=following[0], items=requirements_check([following[0]], lead_facts(lead, [following[0]]))
    )


def stage_counts_by_code(counts: dict[int, int], stages: list[Stage]) -> dict[str, int]:
    """Per-stage-id counts summed by stage code: leads on a stage of an older version count in the
    stage of that code in force. No query unless some leads are on older versions' stages."""
    codes = {stage.pk: stage.code for stage in stages}
    older = [stage_id for stage_id in counts if stage_id not in codes]
    if older:
        codes.update(Stage.objects.filter(pk__in=older).values_list("pk", "code"))
    by_code: dict[str, int] = {}
    for stage_id, n in counts.items():
        by_code[codes[stage_id]] = by_code.get(codes[stage_id], 0) + n
    return by_code
