"""A lead changed owner: everything insights derive per owner follows it (SPEC C5, C9)."""

from __future__ import annotations

from salesloop.insights.funnel_rollup import funnel_owners_sync
from salesloop.insights.indicators.facts import indicator_facts_owner_sync


def lead_owners_sync(*, lead_ids: list[int]) -> None:
    """The funnel's owner rows and the indicators' rows and ledgers of these leads move to their
    current owner. The funnel goes first: it reads the owner the rows were counted for from the
    indicator rows, which the second call then updates."""
    funnel_owners_sync(lead_ids=lead_ids)
    indicator_facts_owner_sync(lead_ids=lead_ids)
