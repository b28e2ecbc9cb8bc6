"""The per-day ledgers every scope's indicators sum (insights.models: IndicatorArrivalDay,
IndicatorStallDay, IndicatorTouchDay), kept from the per-lead rows by one set-based statement per
ledger: `ledgers_add(sign=-1, …)` before the leads' rows change subtracts their contribution,
`ledgers_add(sign=+1, …)` after adds the new one (upserts that increment; rows are fed in key
order, so concurrent refreshes lock shared rows in the same order). A rebuild empties them and adds
every lead. Days are local days (Asia/Shanghai: a fixed offset, no daylight saving)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection

from salesloop.core import clock
from salesloop.core.rows import statements_run
from salesloop.insights.models.indicators import (
    NEVER,
    SPAN_OPEN_END,
    IndicatorArrivalDay,
    IndicatorLead,
    IndicatorSpan,
    IndicatorStallDay,
    IndicatorTouch,
    IndicatorTouchDay,
)

LEDGERS = [m._meta.db_table for m in (IndicatorArrivalDay, IndicatorStallDay, IndicatorTouchDay)]


def offset_seconds() -> int:
    offset = clock.org_tz().utcoffset(dt.datetime(2026, 1, 1))
    return int(offset.total_seconds()) if offset is not None else 0


def local_day(moment: dt.datetime) -> dt.date:
    return (moment.astimezone(dt.UTC) + dt.timedelta(seconds=offset_seconds())).date()


def _day(column: str) -> str:
    seconds = offset_seconds()
    if connection.vendor == "postgresql":
        return f"CAST({column} + INTERVAL '{seconds} seconds' AS DATE)"
    return f"date({column}, '{seconds:+d} seconds')"


def _statements(sign: int, where: str, wp: list[object]) -> list[tuple[str, list[object]]]:
    """One upsert per ledger, adding `sign` × the contribution of the per-lead rows `where` selects
    (a condition on lead_id). The SQL is built from our table names, an integer and that condition."""
    sign = 1 if sign > 0 else -1
    arrivals, stalls, touches = LEDGERS
    leads, spans, touch_rows = (m._meta.db_table for m in (IndicatorLead, IndicatorSpan, IndicatorTouch))
    never = connection.ops.adapt_datefield_value(NEVER)
    open_end = connection.ops.adapt_datetimefield_value(SPAN_OPEN_END)

    def upsert(table: str, keys: list[str], values: list[str], select: str) -> str:
        updates = ", ".join(f"{v} = {table}.{v} + excluded.{v}" for v in values)
        return (
            f"INSERT INTO {table} ({', '.join(keys + values)}) {select} "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
        )

    return [
        (
            upsert(
                arrivals,
                ["arrival_day", "needs_day", "region_id", "owner_id"],
                ["leads"],
                f"SELECT d, n, r, o, {sign} * COUNT(*) FROM (SELECT {_day('arrived_at')} AS d, "  # noqa: S608
                f"COALESCE({_day('needs_confirmed_at')}, %s) AS n, COALESCE(region_id, 0) AS r, "
                f"COALESCE(owner_id, 0) AS o FROM {leads} WHERE {where}) x WHERE 1 = 1 "
                "GROUP BY d, n, r, o ORDER BY d, n, r, o",
            ),
            [never, *wp],
        ),
        (
            upsert(
                stalls,
                ["day", "region_id", "owner_id", "rank"],
                ["leads", "entered_s"],
                f"SELECT d, r, o, k, {sign} * SUM(c), {sign} * SUM(e) FROM ("  # noqa: S608
                f"SELECT {_day('entered_at')} AS d, COALESCE(region_id, 0) AS r, COALESCE(owner_id, 0) AS o, "
                f"rank AS k, 1 AS c, entered_s AS e FROM {spans} WHERE {where} UNION ALL "
                f"SELECT {_day('left_at')}, COALESCE(region_id, 0), COALESCE(owner_id, 0), rank, "
                "-1, -entered_s "
                f"FROM {spans} WHERE left_at < %s AND {where}) x WHERE 1 = 1 "
                "GROUP BY d, r, o, k ORDER BY d, r, o, k",
            ),
            [*wp, open_end, *wp],
        ),
        (
            upsert(
                touches,
                ["day", "region_id", "owner_id", "rank"],
                ["touches", "responded"],
                f"SELECT d, r, o, k, {sign} * COUNT(*), {sign} * SUM(a) FROM (SELECT {_day('at')} AS d, "  # noqa: S608
                "COALESCE(region_id, 0) AS r, COALESCE(owner_id, 0) AS o, rank AS k, "
                f"CASE WHEN responded THEN 1 ELSE 0 END AS a FROM {touch_rows} WHERE {where}) x WHERE 1 = 1 "
                "GROUP BY d, r, o, k ORDER BY d, r, o, k",
            ),
            wp,
        ),
    ]


def ledgers_add(*, sign: int, where: str = "1 = 1", params: list[object] | None = None) -> None:
    """Add (sign +1) or subtract (−1) the contribution of the per-lead rows matching `where`."""
    statements_run(ledger_statements(sign=sign, where=where, params=params))


def ledger_statements(
    *, sign: int, where: str = "1 = 1", params: list[object] | None = None, touches: bool = True
) -> list[tuple[str, list[Any]]]:
    """`ledgers_add`'s statements, for a caller that runs them with its own; without the touches
    ledger's when the leads can have no touch rows (they have just arrived)."""
    statements = _statements(sign, where, list(params or []))
    return statements if touches else statements[:2]


def ledgers_rebuild() -> None:
    """Every ledger from every per-lead row."""
    with connection.cursor() as cursor:
        for table in LEDGERS:
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608
    ledgers_add(sign=1)
