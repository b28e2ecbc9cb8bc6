"""Demo outreach: outbound touches for generated leads, so the response-rate indicator (SPEC C9) has
facts to count. One set-based INSERT … SELECT per call: each stage move of the leads in the id range
gets an outbound call at the moment of the move, answered or not by a fixed hash of the move's id —
deterministic, and less often answered at 报价谈判 (price talk) than elsewhere, like a real funnel.

Touches are appended rows like those of `engagement.services.touch_record`, without its per-row
checks: the generator's leads and moves are consistent by construction (demo.generator)."""

from __future__ import annotations

from django.db import connection, transaction

from salesloop.engagement.models import Touch
from salesloop.pipeline.models import Stage, StageMove

ANSWERED_PERCENT = 64  # outside 报价谈判
ANSWERED_PERCENT_AT_QUOTE = 46


@transaction.atomic
def touches_seed(*, first_lead_id: int, last_lead_id: int) -> int:
    """One outbound call per stage move of the leads in [first, last]; returns how many."""
    quote_ids = list(Stage.objects.filter(code="quote_negotiation").values_list("id", flat=True)) or [0]
    quote_list = ", ".join(str(int(i)) for i in quote_ids)
    touches, moves = Touch._meta.db_table, StageMove._meta.db_table
    sql = f"""
        INSERT INTO {touches} (lead_id, contact_id, kind, direction, responded, responded_recorded_at,
                               customer_initiated, at, actor_id, note, created_at)
        SELECT m.lead_id, NULL, 'call', 'outbound',
               CASE WHEN m.to_stage_id IN ({quote_list})
                    THEN (m.id * 2654435761) %% 100 < {ANSWERED_PERCENT_AT_QUOTE}
                    ELSE (m.id * 2654435761) %% 100 < {ANSWERED_PERCENT} END,
               NULL, FALSE, m.at, NULL, '', m.at
          FROM {moves} m
         WHERE m.lead_id BETWEEN %s AND %s AND m.to_status = 'open'"""  # noqa: S608 -- our tables, integer ids
    with connection.cursor() as cursor:
        cursor.execute(sql, [first_lead_id, last_lead_id])
        return cursor.rowcount
