"""Routing's loads kept by the database: each user's open leads (`OpenLeads`) and assignments per
quarter hour (`AssignedInQuarter`), maintained by triggers on the leads' and assignments' tables.

Every routed batch weighs its reps' open leads and the leads they received today (caps, the
least-loaded strategy, the trace's candidates). Counted from the leads and assignments, that read
every open lead of the roster and every assignment of the day for each batch — index-only in
theory, but rows written since the last VACUUM are read from the table: 10 ms a webhook batch on
PostgreSQL at 7,000 leads (EXPLAIN ANALYZE), the largest statement of its turn, and growing with
the book. Read from these rows it is one row per rep, plus at most 96 quarter hours per rep.

The triggers see every writer — services, imports (their COPY and multi-row inserts), bulk updates
of owners, cascades — so no code path can forget to count. PostgreSQL runs one statement-level
trigger per statement, over its transition tables (a batch of 20,000 leads adds once per owner,
in owner order, so concurrent writers lock counters in one order). The import's own inserts, made
with `session_replication_role = replica` to skip the foreign keys' triggers, skip these too, and
the import adds what they would have counted itself (`loads_add`: it knows every new lead's owner
and moment; the triggers' transition tables cost ~3 µs a lead, measured). SQLite runs a row trigger
per lead or assignment that changes a count, for every writer.

SQLite drops a table's triggers with the table, and Django rebuilds a table to alter it: after
every `migrate`, `loads_kept` (post_migrate) puts missing triggers back and counts again, so a
later migration of the leads' table cannot silently stop the counting. `loads_recount` rebuilds
the rows from the leads and assignments (`salesloop routing_loads_recount`)."""

# ruff: noqa: S608 -- every statement here is built from our own table names and literals, no input

from __future__ import annotations

import datetime as dt

from django.db.backends.base.base import BaseDatabaseWrapper

QUARTER_SECONDS = 900

_LEADS = "crm_lead"
_ASSIGNMENTS = "routing_assignment"
_OPEN = "routing_openleads"
_QUARTERS = "routing_assignedinquarter"
OPEN_STATUS = "open"  # crm.models.LeadStatus.OPEN (a literal here: the triggers are SQL)

# (trigger name, table, the function keeping its counts): each table has one trigger per kind of
# statement, with the transition tables that kind has
_PG_KEPT = (
    ("routing_open_leads", _LEADS, "routing_open_leads_kept"),
    ("routing_assigned", _ASSIGNMENTS, "routing_assigned_kept"),
)
_PG_TRANSITIONS = {
    "INSERT": "REFERENCING NEW TABLE AS new_rows",
    "UPDATE": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "DELETE": "REFERENCING OLD TABLE AS old_rows",
}
PG_TRIGGERS = {
    f"{prefix}_{event.lower()}": (table, event, transitions, function)
    for prefix, table, function in _PG_KEPT
    for event, transitions in _PG_TRANSITIONS.items()
}

_PG_QUARTER = f"floor(extract(epoch FROM created_at) / {QUARTER_SECONDS})::bigint"
_PG_OPEN = f"status = '{OPEN_STATUS}' AND owner_id IS NOT NULL"

PG_FUNCTIONS = [
    f"""
CREATE OR REPLACE FUNCTION routing_open_leads_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    UPDATE {_OPEN} c SET open_leads = c.open_leads - gone.n
    FROM (SELECT owner_id, COUNT(*)::int AS n FROM old_rows WHERE {_PG_OPEN} GROUP BY owner_id) gone
    WHERE c.user_id = gone.owner_id;
  ELSIF TG_OP = 'INSERT' THEN
    INSERT INTO {_OPEN} AS c (user_id, open_leads)
    SELECT owner_id, COUNT(*)::int FROM new_rows WHERE {_PG_OPEN} GROUP BY owner_id ORDER BY owner_id
    ON CONFLICT (user_id) DO UPDATE SET open_leads = c.open_leads + EXCLUDED.open_leads;
  ELSE
    INSERT INTO {_OPEN} AS c (user_id, open_leads)
    SELECT owner_id, SUM(d)::int FROM (
      SELECT owner_id, 1 AS d FROM new_rows WHERE {_PG_OPEN}
      UNION ALL SELECT owner_id, -1 FROM old_rows WHERE {_PG_OPEN}
    ) moved GROUP BY owner_id HAVING SUM(d) <> 0 ORDER BY owner_id
    ON CONFLICT (user_id) DO UPDATE SET open_leads = c.open_leads + EXCLUDED.open_leads;
  END IF;
  RETURN NULL;
END $$""",
    f"""
CREATE OR REPLACE FUNCTION routing_assigned_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    UPDATE {_QUARTERS} c SET assigned = c.assigned - gone.n
    FROM (SELECT assignee_id, {_PG_QUARTER} AS quarter, COUNT(*)::int AS n FROM old_rows
          WHERE assignee_id IS NOT NULL GROUP BY 1, 2) gone
    WHERE c.user_id = gone.assignee_id AND c.quarter = gone.quarter;
  ELSIF TG_OP = 'INSERT' THEN
    INSERT INTO {_QUARTERS} AS c (user_id, quarter, assigned)
    SELECT assignee_id, {_PG_QUARTER}, COUNT(*)::int FROM new_rows WHERE assignee_id IS NOT NULL
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (user_id, quarter) DO UPDATE SET assigned = c.assigned + EXCLUDED.assigned;
  ELSE
    INSERT INTO {_QUARTERS} AS c (user_id, quarter, assigned)
    SELECT assignee_id, quarter, SUM(d)::int FROM (
      SELECT assignee_id, {_PG_QUARTER} AS quarter, 1 AS d FROM new_rows WHERE assignee_id IS NOT NULL
      UNION ALL SELECT assignee_id, {_PG_QUARTER}, -1 FROM old_rows WHERE assignee_id IS NOT NULL
    ) moved GROUP BY 1, 2 HAVING SUM(d) <> 0 ORDER BY 1, 2
    ON CONFLICT (user_id, quarter) DO UPDATE SET assigned = c.assigned + EXCLUDED.assigned;
  END IF;
  RETURN NULL;
END $$""",
]


def _sqlite_open(row: str) -> str:
    return f"{row}.status = '{OPEN_STATUS}' AND {row}.owner_id IS NOT NULL"


def _sqlite_quarter(row: str) -> str:
    # whole seconds: strftime('%s') of a time with a fraction rounds to the millisecond, which
    # could carry 59.9995 s into the next quarter
    return f"CAST(strftime('%s', substr({row}.created_at, 1, 19)) AS INTEGER) / {QUARTER_SECONDS}"


def _sqlite_add(user: str, quarter: str | None, delta: int) -> str:
    if quarter is None:
        return (
            f"INSERT INTO {_OPEN} (user_id, open_leads) VALUES ({user}, {delta}) "
            f"ON CONFLICT(user_id) DO UPDATE SET open_leads = open_leads + {delta};"
        )
    return (
        f"INSERT INTO {_QUARTERS} (user_id, quarter, assigned) VALUES ({user}, {quarter}, {delta}) "
        f"ON CONFLICT(user_id, quarter) DO UPDATE SET assigned = assigned + {delta};"
    )


def _sqlite_take(user: str, quarter: str | None) -> str:
    if quarter is None:
        return f"UPDATE {_OPEN} SET open_leads = open_leads - 1 WHERE user_id = {user};"
    return f"UPDATE {_QUARTERS} SET assigned = assigned - 1 WHERE user_id = {user} AND quarter = {quarter};"


_MOVED_LEAD = "(NEW.status IS NOT OLD.status OR NEW.owner_id IS NOT OLD.owner_id)"
_MOVED_ASSIGNMENT = "(NEW.assignee_id IS NOT OLD.assignee_id OR NEW.created_at IS NOT OLD.created_at)"

SQLITE_TRIGGERS = {
    "routing_open_leads_insert": (
        f"AFTER INSERT ON {_LEADS} WHEN {_sqlite_open('NEW')}",
        _sqlite_add("NEW.owner_id", None, 1),
    ),
    "routing_open_leads_update_out": (
        f"AFTER UPDATE OF status, owner_id ON {_LEADS} WHEN {_sqlite_open('OLD')} AND {_MOVED_LEAD}",
        _sqlite_take("OLD.owner_id", None),
    ),
    "routing_open_leads_update_in": (
        f"AFTER UPDATE OF status, owner_id ON {_LEADS} WHEN {_sqlite_open('NEW')} AND {_MOVED_LEAD}",
        _sqlite_add("NEW.owner_id", None, 1),
    ),
    "routing_open_leads_delete": (
        f"AFTER DELETE ON {_LEADS} WHEN {_sqlite_open('OLD')}",
        _sqlite_take("OLD.owner_id", None),
    ),
    "routing_assigned_insert": (
        f"AFTER INSERT ON {_ASSIGNMENTS} WHEN NEW.assignee_id IS NOT NULL",
        _sqlite_add("NEW.assignee_id", _sqlite_quarter("NEW"), 1),
    ),
    "routing_assigned_update_out": (
        f"AFTER UPDATE OF assignee_id, created_at ON {_ASSIGNMENTS} "
        f"WHEN OLD.assignee_id IS NOT NULL AND {_MOVED_ASSIGNMENT}",
        _sqlite_take("OLD.assignee_id", _sqlite_quarter("OLD")),
    ),
    "routing_assigned_update_in": (
        f"AFTER UPDATE OF assignee_id, created_at ON {_ASSIGNMENTS} "
        f"WHEN NEW.assignee_id IS NOT NULL AND {_MOVED_ASSIGNMENT}",
        _sqlite_add("NEW.assignee_id", _sqlite_quarter("NEW"), 1),
    ),
    "routing_assigned_delete": (
        f"AFTER DELETE ON {_ASSIGNMENTS} WHEN OLD.assignee_id IS NOT NULL",
        _sqlite_take("OLD.assignee_id", _sqlite_quarter("OLD")),
    ),
}


def triggers_present(connection: BaseDatabaseWrapper) -> set[str]:
    """The names of this module's triggers the database holds."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname = ANY(%s)",
                [list(PG_TRIGGERS)],
            )
        else:
            names = list(SQLITE_TRIGGERS)
            marks = ", ".join(["%s"] * len(names))
            cursor.execute(
                f"SELECT name FROM sqlite_master WHERE type = 'trigger' AND name IN ({marks})", names
            )
        return {row[0] for row in cursor.fetchall()}


def triggers_install(connection: BaseDatabaseWrapper) -> None:
    """Create (or replace) every trigger; then `loads_recount` makes the rows right."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # the transaction's deferred foreign-key checks run now (a table with pending trigger
            # events cannot be altered), then defer again, as Django creates them
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for function in PG_FUNCTIONS:
                cursor.execute(function)
            for name, (table, event, transitions, function) in PG_TRIGGERS.items():
                cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
                cursor.execute(
                    f"CREATE TRIGGER {name} AFTER {event} ON {table} {transitions} "
                    f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
                )
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        elif connection.vendor == "sqlite":
            for name, (when, action) in SQLITE_TRIGGERS.items():
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
                cursor.execute(f"CREATE TRIGGER {name} {when} BEGIN {action} END")
        else:  # pragma: no cover -- DESIGN.md: SQLite and PostgreSQL only
            raise NotImplementedError(connection.vendor)


def triggers_in_replica_mode(connection: BaseDatabaseWrapper, *, fire: bool) -> None:
    """PostgreSQL: whether the triggers fire for a session in replica mode (`ENABLE ALWAYS`) or,
    as created, not (migration 0007 turned the first into the second). Nothing on SQLite."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # as `triggers_install` says why
        for name, (table, *_) in PG_TRIGGERS.items():
            cursor.execute(f"ALTER TABLE {table} ENABLE {'ALWAYS ' if fire else ''}TRIGGER {name}")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def loads_add(
    connection: BaseDatabaseWrapper,
    open_leads: dict[int, int],
    assigned: dict[tuple[int, int], int],
) -> None:
    """What the triggers would have counted for rows written past them (an import's inserts in
    replica mode): open leads by user, assignments by (user, quarter hour). Added in user order,
    the open leads first — the order in which the triggers of the import's inserts (leads, then
    their assignments) took the same rows."""
    with connection.cursor() as cursor:
        if open_leads:
            users = sorted(open_leads)
            cursor.execute(
                f"INSERT INTO {_OPEN} (user_id, open_leads) VALUES {', '.join(['(%s, %s)'] * len(users))} "
                f"ON CONFLICT (user_id) DO UPDATE SET open_leads = {_OPEN}.open_leads + excluded.open_leads",
                [value for user in users for value in (user, open_leads[user])],
            )
        if assigned:
            keys = sorted(assigned)
            cursor.execute(
                f"INSERT INTO {_QUARTERS} (user_id, quarter, assigned) "
                f"VALUES {', '.join(['(%s, %s, %s)'] * len(keys))} ON CONFLICT (user_id, quarter) "
                f"DO UPDATE SET assigned = {_QUARTERS}.assigned + excluded.assigned",
                [value for key in keys for value in (*key, assigned[key])],
            )


def quarter_of(at: dt.datetime) -> int:
    """The quarter hour of a moment, as the triggers number it (whole seconds since the epoch // 900)."""
    return int(at.timestamp()) // QUARTER_SECONDS


def triggers_remove(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for name, (table, *_) in PG_TRIGGERS.items():
                cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            for _prefix, _table, function in _PG_KEPT:
                cursor.execute(f"DROP FUNCTION IF EXISTS {function}()")
        else:
            for name in SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")


def loads_recount(connection: BaseDatabaseWrapper) -> None:
    """Rebuild both tables from the leads and the assignments (in the caller's transaction)."""
    quarter = _PG_QUARTER if connection.vendor == "postgresql" else _sqlite_quarter(_ASSIGNMENTS)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {_OPEN}")
        cursor.execute(
            f"INSERT INTO {_OPEN} (user_id, open_leads) SELECT owner_id, COUNT(*) FROM {_LEADS} "
            f"WHERE status = %s AND owner_id IS NOT NULL GROUP BY owner_id",
            [OPEN_STATUS],
        )
        cursor.execute(f"DELETE FROM {_QUARTERS}")
        cursor.execute(
            f"INSERT INTO {_QUARTERS} (user_id, quarter, assigned) SELECT assignee_id, {quarter}, COUNT(*) "
            f"FROM {_ASSIGNMENTS} WHERE assignee_id IS NOT NULL GROUP BY 1, 2"
        )


def loads_kept(connection: BaseDatabaseWrapper) -> bool:
    """Put back any trigger missing (a migration rebuilt a table: SQLite drops its triggers) and,
    if one was, count again. True if anything was missing."""
    expected = set(PG_TRIGGERS if connection.vendor == "postgresql" else SQLITE_TRIGGERS)
    if triggers_present(connection) >= expected:
        return False
    from django.db import transaction

    with transaction.atomic(using=connection.alias):
        triggers_install(connection)
        loads_recount(connection)
    return True


def loads_kept_rows() -> tuple[dict[int, int], dict[tuple[int, int], int]]:
    """The kept rows, those back at zero left out: open leads by user, assignments by (user,
    quarter hour)."""
    from salesloop.routing.models import AssignedInQuarter, OpenLeads

    open_leads = {row.user_id: row.open_leads for row in OpenLeads.objects.all() if row.open_leads}
    quarters = {(r.user_id, r.quarter): r.assigned for r in AssignedInQuarter.objects.all() if r.assigned}
    return open_leads, quarters
