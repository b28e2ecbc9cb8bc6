from __future__ import annotations

from django_tasks import task

from salesloop.pipeline.services import lead_projection_rebuild


@task()
def leads_projection_rebuild(lead_ids: list[int]) -> int:
    """Background: recompute leads' stage/status from their moves (admin action, repairs)."""
    for lead_id in lead_ids:
        lead_projection_rebuild(lead_id=lead_id)
    return len(lead_ids)
