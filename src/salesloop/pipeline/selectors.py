from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from salesloop.crm.models import Lead
from salesloop.pipeline.models import Pipeline, Stage, StageMove


def pipeline_default() -> Pipeline:
    pipeline = Pipeline.objects.filter(is_default=True).first()
    if pipeline is None:
        raise ImproperlyConfigured("no default pipeline: run `salesloop migrate`")
    return pipeline


def pipeline_first_stage(pipeline: Pipeline | None) -> Stage | None:
    """The stage a new lead enters: the first of the given pipeline, or of the default one.

    One query, written out: every new lead asks it, and the ORM spends longer building this join
    than the database spends answering it."""
    # Our own table names; every value is a parameter.
    stages, pipelines = (connection.ops.quote_name(m._meta.db_table) for m in (Stage, Pipeline))
    if pipeline is None:
        sql = (
            f"SELECT s.* FROM {stages} s JOIN {pipelines} p ON p.id = s.pipeline_id"  # noqa: S608
            " WHERE p.is_default = %s ORDER BY s.position LIMIT 1"
        )
        return next(iter(Stage.objects.raw(sql, [True])), None)
    sql = f"SELECT * FROM {stages} WHERE pipeline_id = %s ORDER BY position LIMIT 1"  # noqa: S608
    first = next(iter(Stage.objects.raw(sql, [pipeline.pk])), None)
    if first is not None:
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
