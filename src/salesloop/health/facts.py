"""The engagement facts of a range of leads, aggregated per lead in SQL (SPEC C3.1).

Four grouped parts — touches, document views, meetings, the latest budget milestone — in one
statement (UNION ALL), each over `lead_id BETWEEN lo AND hi`, served by the engagement tables'
(lead, at) indexes. One lead is the range [id, id]: the single-lead recompute and the bulk
recompute read the same numbers.
Each fact's weight is `exp(-k · age_days)` with k = ln 2 / half-life (health.scoring).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection

from salesloop.health.scoring import (
    BUDGET_PROGRESS,
    CONTACT_FREQUENCY,
    CUSTOMER_INITIATED,
    MATERIAL_VIEWING,
    MEETING_ATTENDANCE,
    RESPONSE_RATE,
    Config,
    Facts,
)

_EPOCH_JULIAN = 2440587.5  # julianday('1970-01-01')


def db_time(moment: dt.datetime) -> Any:
    """A datetime as the backend compares it with stored ones (SQLite: naive UTC text)."""
    return connection.ops.adapt_datetimefield_value(moment)


def _weight(column: str) -> str:
    """SQL for the decay weight of a fact at `column`; takes the parameters (k, now in days)."""
    if connection.vendor == "sqlite":
        return f"EXP(%s * (julianday({column}) - %s))"
    # date_part gives a double; EXTRACT gives a numeric, and EXP over numerics is ~20× slower.
    return f"EXP(%s * (date_part('epoch', {column}) / 86400.0 - %s))"


def _now_days(now: dt.datetime) -> float:
    epoch_days = now.timestamp() / 86400.0
    return epoch_days + _EPOCH_JULIAN if connection.vendor == "sqlite" else epoch_days


def _since(now: dt.datetime, config: Config, signal: str) -> Any:
    return db_time(now - dt.timedelta(days=config.windows[signal]))


def lead_facts(*, lo: int, hi: int, now: dt.datetime, config: Config) -> dict[int, Facts]:
    """Facts of every lead with an id in [lo, hi] that has any fact up to `now`."""
    # weight = exp(k · (at − now)) with k = ln 2 / half-life: 1 today, ½ one half-life ago
    k, today, at_now = config.decay_rate, _now_days(now), db_time(now)
    facts: dict[int, Facts] = {}

    def get(lead_id: int) -> Facts:
        found = facts.get(lead_id)
        if found is None:
            found = facts[lead_id] = Facts()
        return found

    # One statement, four grouped parts (kind 0 touches, 1 views, 2 meetings, 3 budget), padded
    # to one row shape: one round trip per range instead of four — most of a single lead's
    # recompute is round trips.
    w = _weight("at")
    response_since = _since(now, config, RESPONSE_RATE)
    touches = f"""
        SELECT 0, lead_id, COUNT(*),
          SUM(CASE WHEN at >= %s THEN {w} ELSE 0 END),
          SUM(CASE WHEN at >= %s AND direction = 'outbound' AND responded = %s THEN {w} ELSE 0 END),
          SUM(CASE WHEN at >= %s AND direction = 'outbound' AND responded IS NOT NULL THEN {w} ELSE 0 END),
          SUM(CASE WHEN at >= %s AND direction = 'inbound' AND customer_initiated = %s THEN {w} ELSE 0 END),
          NULL
        FROM engagement_touch
        WHERE lead_id BETWEEN %s AND %s AND at <= %s
        GROUP BY lead_id"""  # noqa: S608 -- no user input in the SQL text
    touch_params = [
        _since(now, config, CONTACT_FREQUENCY), k, today,
        response_since, True, k, today,
        response_since, k, today,
        _since(now, config, CUSTOMER_INITIATED), True, k, today,
        lo, hi, at_now,
    ]  # fmt: skip
    w = _weight("opened_at")
    views = f"""
        SELECT 1, lead_id, COUNT(*), SUM(CASE WHEN opened_at >= %s THEN seconds * {w} ELSE 0 END),
          NULL, NULL, NULL, NULL
        FROM engagement_documentview
        WHERE lead_id BETWEEN %s AND %s AND opened_at <= %s
        GROUP BY lead_id"""  # noqa: S608
    view_params = [_since(now, config, MATERIAL_VIEWING), k, today, lo, hi, at_now]
    w = _weight("scheduled_at")
    meeting_since = _since(now, config, MEETING_ATTENDANCE)
    meetings = f"""
        SELECT 2, lead_id, COUNT(*),
          SUM(CASE WHEN scheduled_at >= %s AND status = 'attended' THEN {w} * (CASE
                WHEN attended_minutes IS NULL OR planned_minutes = 0 OR attended_minutes >= planned_minutes
                THEN 1.0 ELSE attended_minutes * 1.0 / planned_minutes END) ELSE 0 END),
          SUM(CASE WHEN scheduled_at >= %s THEN {w} ELSE 0 END),
          NULL, NULL, NULL
        FROM engagement_meeting
        WHERE lead_id BETWEEN %s AND %s AND scheduled_at <= %s AND status IN ('attended', 'no_show')
        GROUP BY lead_id"""  # noqa: S608
    meeting_params = [meeting_since, k, today, meeting_since, k, today, lo, hi, at_now]
    budget = """
        SELECT 3, lead_id, fresh, NULL, NULL, NULL, NULL, stage FROM (
          SELECT lead_id, stage, CASE WHEN at >= %s THEN 1 ELSE 0 END AS fresh,
                 ROW_NUMBER() OVER (PARTITION BY lead_id ORDER BY at DESC, id DESC) AS rn
          FROM engagement_budgetmilestone
          WHERE lead_id BETWEEN %s AND %s AND at <= %s
        ) latest
        WHERE rn = 1"""
    budget_params = [_since(now, config, BUDGET_PROGRESS), lo, hi, at_now]

    with connection.cursor() as cursor:
        cursor.execute(
            " UNION ALL ".join([touches, views, meetings, budget]),
            [*touch_params, *view_params, *meeting_params, *budget_params],
        )
        rows = cursor.fetchall()
    for kind, lead_id, a, b, c, d, e, stage in rows:
        f = get(lead_id)
        if kind == 0:
            f.touches = int(a)
            f.touches_decayed = float(b or 0)
            f.answered_decayed = float(c or 0)
            f.asked_decayed = float(d or 0)
            f.initiated_decayed = float(e or 0)
        elif kind == 1:
            f.views = int(a)
            f.seconds_decayed = float(b or 0)
        elif kind == 2:
            f.meetings = int(a)
            f.attended_decayed = float(b or 0)
            f.held_decayed = float(c or 0)
        else:
            # A milestone older than the window is stale: the lead keeps a fact, the stage counts
            # as unknown again.
            f.budget_stage = stage if a else "unknown"
    return facts
