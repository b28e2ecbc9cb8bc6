"""Recompute the health of a range of lead ids (SPEC C3.2–3): one lead on a new fact, a million
in the daily run. Same facts (health.facts), same arithmetic (health.scoring), same writes; only
the way rows reach the database differs with the batch size (plain statements for a few rows,
`executemany` on SQLite and COPY into a temporary table on PostgreSQL for a chunk).

No model instances: a chunk is a few tuples per lead, written back with set-based statements, so
memory stays flat whatever the number of leads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.db import connection, transaction

from salesloop.health.facts import db_time, lead_facts
from salesloop.health.scoring import Config, breakdown_text, score_lead

SMALL_BATCH = 50  # up to this many rows: plain statements; above: bulk paths
CHUNK_IDS = 50_000  # lead ids per chunk of the bulk recompute


@dataclass
class Crossing:
    """A lead that went from not red to red in this recompute: its people are notified."""

    lead_id: int
    score: int
    owner_id: int | None
    region_id: int | None


@dataclass
class Outcome:
    leads: int = 0  # leads looked at
    scored: int = 0  # leads with facts, scored
    changed: int = 0  # Lead.health_score values that changed
    crossed: int = 0  # open leads that went red
    crossings: list[Crossing] = field(default_factory=list)  # of one range only
    recoveries: list[int] = field(default_factory=list)  # lead ids no longer red (one range only)


def recompute_range(
    *, lo: int, hi: int, now: dt.datetime, config: Config, open_only: bool = False, customers: bool = True
) -> Outcome:
    """Recompute every lead with an id in [lo, hi] (only open ones if `open_only`), in the caller's
    transaction; and their customers' scores unless `customers` is False (the bulk run rescores
    customers once at the end: `customers_rescore`)."""
    outcome = Outcome()
    status_sql = " AND l.status = 'open'" if open_only else ""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT l.id, l.customer_id, l.owner_id, l.region_id, l.status, l.health_score, "  # noqa: S608
            "h.lead_id, h.red, h.red_since FROM crm_lead l "
            "LEFT JOIN health_leadhealth h ON h.lead_id = l.id "
            f"WHERE l.id BETWEEN %s AND %s{status_sql}",
            [lo, hi],
        )
        leads = cursor.fetchall()
    if not leads:
        return outcome
    previous = {row[0]: (bool(row[7]), row[8]) for row in leads if row[6] is not None}
    facts = lead_facts(lo=lo, hi=hi, now=now, config=config)

    at_now = db_time(now)
    at_iso = now.astimezone(dt.UTC).isoformat()
    rows: list[tuple[Any, ...]] = []
    scores: list[tuple[int | None, int]] = []  # (new score, lead id) where it changed
    cleared: list[int] = []
    for lead_id, _customer_id, owner_id, region_id, status, old_score, *_previous in leads:
        outcome.leads += 1
        lead_facts_ = facts.get(lead_id)
        if lead_facts_ is None or not lead_facts_.any:
            # No fact yet: the score is unknown, not zero (docs/health.md).
            if old_score is not None:
                scores.append((None, lead_id))
            if lead_id in previous:
                cleared.append(lead_id)
                if previous[lead_id][0]:
                    outcome.recoveries.append(lead_id)
            continue
        result = score_lead(lead_facts_, config)
        red = result.score < config.red_threshold
        was_red, red_since = previous.get(lead_id, (False, None))
        if red and not was_red:
            red_since = at_now
            if status == "open":
                outcome.crossings.append(Crossing(lead_id, result.score, owner_id, region_id))
        elif not red:
            if was_red:
                outcome.recoveries.append(lead_id)
            red_since = None
        breakdown = breakdown_text(result=result, red=red, config=config, at=at_iso)
        rows.append((lead_id, result.score, red, red_since, config.version, at_now, breakdown))
        outcome.scored += 1
        if old_score != result.score:
            scores.append((result.score, lead_id))
    outcome.changed = len(scores)
    outcome.crossed = len(outcome.crossings)
    _write(rows=rows, scores=scores, cleared=cleared, lo=lo, hi=hi, customers=customers)
    return outcome


_COLUMNS = "lead_id, score, red, red_since, model_version, computed_at, breakdown"
_UPSERT_SET = (
    "score = excluded.score, red = excluded.red, red_since = excluded.red_since, "
    "model_version = excluded.model_version, computed_at = excluded.computed_at, "
    "breakdown = excluded.breakdown"
)


def _write(
    *,
    rows: list[tuple[Any, ...]],
    scores: list[tuple[int | None, int]],
    cleared: list[int],
    lo: int,
    hi: int,
    customers: bool,
) -> None:
    postgresql = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if cleared:
            marks = ", ".join(["%s"] * len(cleared))
            cursor.execute(f"DELETE FROM health_leadhealth WHERE lead_id IN ({marks})", cleared)  # noqa: S608
        if postgresql and len(rows) > SMALL_BATCH:
            _write_postgresql_bulk(cursor, rows, scores)
        elif postgresql and customers and len(rows) == 1 and scores == [(rows[0][1], rows[0][0])]:
            _write_postgresql_one(cursor, rows[0])
            return
        else:
            json_value = "%s::jsonb" if postgresql else "%s"
            if rows:
                cursor.executemany(
                    f"INSERT INTO health_leadhealth ({_COLUMNS}) "  # noqa: S608
                    f"VALUES (%s, %s, %s, %s, %s, %s, {json_value}) "
                    f"ON CONFLICT (lead_id) DO UPDATE SET {_UPSERT_SET}",
                    rows,
                )
            if scores:
                cursor.executemany("UPDATE crm_lead SET health_score = %s WHERE id = %s", scores)
        if scores and customers:
            # A customer's score is the best of its open leads' (docs/health.md).
            distinct = "IS DISTINCT FROM" if postgresql else "IS NOT"
            # `+ 0`: PostgreSQL would otherwise turn MAX into a walk down the (health_score, id)
            # index until a row of this customer turns up (minutes for a chunk at 1M leads),
            # instead of reading the customer's few leads through the customer index.
            best = (
                "(SELECT MAX(l.health_score + 0) FROM crm_lead l "
                "WHERE l.customer_id = crm_customer.id AND l.status = 'open')"
            )
            if lo == hi:
                where, params = "id = (SELECT customer_id FROM crm_lead WHERE id = %s)", [lo]
            else:
                where, params = (
                    "id IN (SELECT customer_id FROM crm_lead WHERE id BETWEEN %s AND %s)",
                    [lo, hi],
                )
            changed = f"health_score {distinct} {best}"
            update = f"UPDATE crm_customer SET health_score = {best} WHERE {where} AND {changed}"  # noqa: S608
            cursor.execute(update, params)


def _write_postgresql_one(cursor: Any, row: tuple[Any, ...]) -> None:
    """One lead whose score changed (the common case of a new fact): its health row, its score and
    its customer's in one statement — one round trip instead of three. The statements of a WITH
    share one snapshot, so the customer's best is taken over its other open leads plus this
    lead's new score."""
    others = (
        "(SELECT MAX(l.health_score + 0) FROM crm_lead l "
        "WHERE l.customer_id = c.id AND l.status = 'open' AND l.id <> %(lead)s)"
    )
    best = f"GREATEST({others}, CASE WHEN lead.status = 'open' THEN %(score)s END)"
    cursor.execute(
        f"WITH health AS (INSERT INTO health_leadhealth ({_COLUMNS}) "  # noqa: S608
        "VALUES (%(lead)s, %(score)s, %(red)s, %(red_since)s, %(version)s, %(at)s, %(breakdown)s::jsonb) "
        f"ON CONFLICT (lead_id) DO UPDATE SET {_UPSERT_SET} RETURNING lead_id), "
        "lead AS (UPDATE crm_lead SET health_score = %(score)s WHERE id = %(lead)s "
        "RETURNING customer_id, status) "
        f"UPDATE crm_customer c SET health_score = {best} FROM lead "
        f"WHERE c.id = lead.customer_id AND c.health_score IS DISTINCT FROM {best}",
        dict(zip(("lead", "score", "red", "red_since", "version", "at", "breakdown"), row, strict=True)),
    )


def _write_postgresql_bulk(
    cursor: Any, rows: list[tuple[Any, ...]], scores: list[tuple[int | None, int]]
) -> None:
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS health_stage (lead_id bigint, score smallint, red boolean, "
        "red_since timestamptz, model_version integer, computed_at timestamptz, breakdown jsonb) "
        "ON COMMIT DELETE ROWS"
    )
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS health_scores (lead_id bigint, score smallint) ON COMMIT DELETE ROWS"
    )
    cursor.execute("TRUNCATE health_stage, health_scores")
    with cursor.copy(f"COPY health_stage ({_COLUMNS}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    cursor.execute(
        f"INSERT INTO health_leadhealth ({_COLUMNS}) SELECT {_COLUMNS} FROM health_stage "  # noqa: S608
        f"ON CONFLICT (lead_id) DO UPDATE SET {_UPSERT_SET}"
    )
    if scores:
        with cursor.copy("COPY health_scores (score, lead_id) FROM STDIN") as copy:
            for row in scores:
                copy.write_row(row)
        cursor.execute(
            "UPDATE crm_lead SET health_score = s.score FROM health_scores s WHERE crm_lead.id = s.lead_id"
        )


def customers_rescore(*, lo: int, hi: int) -> int:
    """Set the score of every customer with an id in [lo, hi] to the best of its open leads'
    (docs/health.md), where it differs; set-based, in the caller's transaction."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One grouped pass over the range's leads and a hash join: ~6× faster than a
            # correlated MAX per customer.
            cursor.execute(
                "WITH best AS (SELECT customer_id, MAX(health_score) AS score FROM crm_lead "
                "WHERE status = 'open' AND customer_id BETWEEN %s AND %s GROUP BY customer_id) "
                "UPDATE crm_customer c SET health_score = b.score FROM ("
                "SELECT c2.id, best.score FROM crm_customer c2 LEFT JOIN best ON best.customer_id = c2.id "
                "WHERE c2.id BETWEEN %s AND %s) b "
                "WHERE c.id = b.id AND c.health_score IS DISTINCT FROM b.score",
                [lo, hi, lo, hi],
            )
        else:
            best = (
                "(SELECT MAX(l.health_score + 0) FROM crm_lead l "
                "WHERE l.customer_id = crm_customer.id AND l.status = 'open')"
            )
            cursor.execute(
                f"UPDATE crm_customer SET health_score = {best} "  # noqa: S608
                f"WHERE id BETWEEN %s AND %s AND health_score IS NOT {best}",
                [lo, hi],
            )
        return cursor.rowcount


def default_workers() -> int:
    """Chunks recomputed at once. PostgreSQL: two connections, so one chunk's scoring (Python)
    overlaps another's writes (the server) — on 2 cores the run takes about half as long. SQLite
    has one writer: one at a time."""
    return 2 if connection.vendor == "postgresql" else 1


def _ranges(table: str, chunk: int) -> tuple[list[tuple[int, int]], int, int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MIN(id), MAX(id) FROM {table}")  # noqa: S608 -- a fixed table name
        first, last = cursor.fetchone()
    if first is None:
        return [], 0, -1
    return [(lo, min(lo + chunk - 1, last)) for lo in range(first, last + 1, chunk)], first, last


def _in_chunk_transaction(work: Callable[[], Any], *, own_connection: bool) -> Any:
    """Run `work` in its own transaction; a worker thread closes its connection afterwards."""
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    # Scores can be computed again from the facts: the commit need not wait for
                    # the WAL to reach the disk.
                    cursor.execute("SET LOCAL synchronous_commit = off")
                    # Compiling each chunk's queries costs more than it saves on 50,000 leads.
                    cursor.execute("SET LOCAL jit = off")
            return work()
    finally:
        if own_connection:
            connection.close()


def recompute_all(
    *,
    now: dt.datetime,
    config: Config,
    open_only: bool = True,
    chunk: int = CHUNK_IDS,
    workers: int | None = None,
    on_crossings: Callable[[list[Crossing]], None] | None = None,
    on_recoveries: Callable[[list[int]], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Outcome:
    """Every lead, chunk by chunk of ids, each chunk in its own transaction (`workers` at once,
    each on its own connection), then every customer's score from its leads'."""
    # Inside a caller's transaction, other connections would not see its uncommitted rows: the
    # chunks then run in it, one at a time.
    workers = 1 if connection.in_atomic_block else (workers or default_workers())
    lead_ranges, first, last = _ranges("crm_lead", chunk)
    total = Outcome()
    if not lead_ranges:
        return total

    def lead_chunk(lo: int, hi: int) -> Outcome:
        part = recompute_range(lo=lo, hi=hi, now=now, config=config, open_only=open_only, customers=False)
        if on_crossings and part.crossings:
            on_crossings(part.crossings)
        if on_recoveries and part.recoveries:
            on_recoveries(part.recoveries)
        return part

    def add(part: Outcome, size: int) -> None:
        total.leads += part.leads
        total.scored += part.scored
        total.changed += part.changed
        total.crossed += part.crossed
        done[0] += size
        if progress:
            progress(min(done[0], last - first + 1), last - first + 1)

    done = [0]
    customer_ranges = _ranges("crm_customer", chunk)[0]
    if workers == 1:
        for lo, hi in lead_ranges:
            add(_in_chunk_transaction(partial(lead_chunk, lo, hi), own_connection=False), hi - lo + 1)
        for lo, hi in customer_ranges:
            _in_chunk_transaction(partial(customers_rescore, lo=lo, hi=hi), own_connection=False)
        return total
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="health-recompute") as pool:
        sizes = {
            pool.submit(_in_chunk_transaction, partial(lead_chunk, lo, hi), own_connection=True): hi - lo + 1
            for lo, hi in lead_ranges
        }
        for future in as_completed(sizes):
            add(future.result(), sizes[future])
        # Customers after every lead: a customer's leads may sit in chunks of other threads.
        rescored = [
            pool.submit(_in_chunk_transaction, partial(customers_rescore, lo=lo, hi=hi), own_connection=True)
            for lo, hi in customer_ranges
        ]
        for future in rescored:
            future.result()
    return total
