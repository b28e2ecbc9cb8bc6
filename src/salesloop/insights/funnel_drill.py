"""The leads behind a heat-map cell (SPEC C5.2), with their last follow-up and health: a keyset
page of the user's visible leads (`crm.selectors.leads_visible_to`), so a cell never shows a lead
the user may not open.

`kind` says which leads: `piled` — open leads in the stage now; `passed` — leads that began a stay
in the stage during the period (the "passed through" of the cell)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, Subquery
from django.http import Http404

from salesloop.crm.selectors import FilterError, Page, keyset_page, leads_visible_to
from salesloop.insights.funnel import FunnelQuery

DRILL_KINDS = ("piled", "passed")


@dataclass(frozen=True)
class DrillCell:
    stage_code: str
    kind: str
    region_id: int | None = None  # a cell of the cross view by region
    rep_id: int | None = None  # a cell of the cross view by rep


def drill_cell_parse(params: Any) -> DrillCell:
    stage = str(params.get("stage") or "").strip()
    if not stage:
        raise FilterError("stage", "choose a stage")
    kind = str(params.get("kind") or "piled").strip()
    if kind not in DRILL_KINDS:
        raise FilterError("kind", f"kind must be one of {', '.join(DRILL_KINDS)}")
    ids: dict[str, int | None] = {}
    for name in ("cell_region", "cell_rep"):
        raw = str(params.get(name) or "").strip()
        if raw and (not raw.isdigit() or len(raw) > 18):
            raise FilterError(name, f"{name} must be a record id (a positive whole number)")
        ids[name] = int(raw) if raw else None
    return DrillCell(stage, kind, ids["cell_region"], ids["cell_rep"])


def last_touch_subquery() -> Subquery:
    """The time of the lead's latest follow-up (engagement.Touch, by its (lead, at) index)."""
    from salesloop.engagement.models import Touch

    return Subquery(Touch.objects.filter(lead_id=OuterRef("pk")).order_by("-at").values("at")[:1])


def funnel_drill(
    *, user: Any, query: FunnelQuery, cell: DrillCell, cursor: str | None = None, limit: int | None = None
) -> Page:
    """One page of the leads behind a cell, newest first, each with `last_touch_at` and its
    `health_score`. Two queries: the stage's ids (by code, every version), then the page."""
    from salesloop.pipeline.models import Stage, StageMove

    stage_ids = list(Stage.objects.filter(code=cell.stage_code).values_list("id", flat=True))
    if not stage_ids:
        raise FilterError("stage", f"no stage {cell.stage_code!r}")
    leads = leads_visible_to(user).filter(merged_into__isnull=True)
    if query.scope == "region":
        leads = leads.filter(region_id=query.region_id)
    elif query.scope == "team":
        leads = leads.filter(owner__team_id=query.team_id)
    elif query.scope == "rep":
        leads = leads.filter(owner_id=query.rep_id)
    if query.source:
        leads = leads.filter(source=query.source)
    if cell.region_id is not None:
        if query.region_id not in (None, cell.region_id):
            raise Http404("region not in this funnel")
        leads = leads.filter(region_id=cell.region_id or None)
    if cell.rep_id is not None:
        leads = leads.filter(owner_id=cell.rep_id or None)
    if cell.kind == "piled":
        leads = leads.filter(status="open", stage_id__in=stage_ids)
    else:
        start, end = query.window()
        began_stay = StageMove.objects.filter(
            lead_id=OuterRef("pk"), to_stage_id__in=stage_ids, at__gte=start, at__lt=end
        ).filter(Q(from_stage__isnull=True) | ~Q(from_stage_id__in=stage_ids))
        leads = leads.filter(Exists(began_stay))
    leads = leads.select_related("owner", "customer", "stage").annotate(last_touch_at=last_touch_subquery())
    return keyset_page(leads, cursor=cursor, limit=limit or settings.SALESLOOP_PAGE_SIZE)
