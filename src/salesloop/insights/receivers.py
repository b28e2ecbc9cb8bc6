"""Insights keeps its derived rows in step with the lead facts the lower apps write.

The writers (pipeline, engagement, routing, intake, crm) announce a change through the signals of
`salesloop.crm.signals` instead of calling insights (DESIGN.md: apps depend downward only). These
receivers, connected in `InsightsConfig.ready`, run inside the sender's transaction: if one fails,
the fact rolls back with it, as when the writers called insights directly. One receiver per signal,
so the order of the work within a signal is fixed here (the funnel rollups, then the indicator rows).
"""

from __future__ import annotations

from typing import Any

from salesloop.crm import signals
from salesloop.insights.funnel_rollup import (
    funnel_entries_apply,
    funnel_import_entries_apply,
    funnel_move_apply,
    funnel_owners_sync,
)
from salesloop.insights.indicators.facts import (
    indicator_facts_owner_sync,
    indicator_facts_refresh,
    indicator_facts_refresh_many,
)


def on_lead_stage_moved(
    *, lead: Any, move: Any, from_code: str | None, direction: str | None, **_: Any
) -> None:
    """C5 funnel rollups (with the lead as it stood before the move) and C9 indicator rows."""
    funnel_move_apply(lead=lead, move=move, from_code=from_code, direction=direction)
    indicator_facts_refresh(lead_id=lead.pk)


def on_lead_touches_changed(*, lead_ids: list[int], **_: Any) -> None:
    """C9: the response rate counts outbound touches and their responses."""
    indicator_facts_refresh_many(lead_ids=lead_ids)


def on_leads_reassigned(*, lead_ids: list[int], **_: Any) -> None:
    """C5, C9: the funnel's rows by owner and the indicator rows and ledgers follow the owner. The
    funnel goes first: it reads the owner the rows were counted for from the indicator rows
    (`IndicatorLead.owner_id`), which the second call then updates."""
    funnel_owners_sync(lead_ids=lead_ids)
    indicator_facts_owner_sync(lead_ids=lead_ids)


def on_leads_arrived(
    *,
    lead_ids: list[int],
    leads: list[Any] | None = None,
    stage_id: int | None = None,
    source: str | None = None,
    entries: list[tuple[int | None, Any]] | None = None,
    owners: list[int | None] | None = None,
    **_: Any,
) -> None:
    """C5 funnel rollups from what the sender passed (no lead is read back), then C9 rows."""
    if leads is not None:
        funnel_entries_apply(leads=leads)
    elif stage_id is not None and source is not None and entries is not None:
        funnel_import_entries_apply(stage_id=stage_id, source=source, entries=entries, owners=owners)
    else:
        raise TypeError("leads_arrived needs either `leads` or `stage_id`, `source` and `entries`")
    indicator_facts_refresh_many(lead_ids=lead_ids, new=True)  # arrived: no rows of theirs yet


def receivers_connect() -> None:
    """Called once from `InsightsConfig.ready`; the dispatch_uids make a second call harmless."""
    signals.lead_stage_moved.connect(on_lead_stage_moved, dispatch_uid="insights.lead_stage_moved")
    signals.lead_touches_changed.connect(
        on_lead_touches_changed, dispatch_uid="insights.lead_touches_changed"
    )
    signals.leads_reassigned.connect(on_leads_reassigned, dispatch_uid="insights.leads_reassigned")
    signals.leads_arrived.connect(on_leads_arrived, dispatch_uid="insights.leads_arrived")
