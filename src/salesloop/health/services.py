"""Customer health score (SPEC C3.2): recomputed on every new fact."""

from __future__ import annotations


def lead_health_changed(*, lead_id: int) -> None:
    """A fact that feeds the score was recorded for this lead: recompute its health (and its
    customer's). Engagement services call this inside their transaction, after the fact is saved."""
