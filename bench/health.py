"""Health score benchmarks (issue 5 item 8; SPEC C3.2): `make bench` runs `run(databases)` and
prints `table(rows)`; `python -m bench.health [--databases sqlite,postgresql] [--leads N]` does the
same alone.

For each database (fresh: SQLite in a temporary directory, PostgreSQL `salesloop_bench_health`,
dropped afterwards): `salesloop seed --leads N` (default 1,000,000), then ~5 engagement facts per
lead generated with set-based SQL (INSERT … SELECT over the leads: 3-4 touches each, a document
view for 30% of leads, a held meeting for 40%, a budget milestone for 30%, over the last 50 days).

(a) **Full recompute** — `health.services.leads_recompute` over every lead (`--all`): the first
scoring of the database (silent: red states recorded, nobody notified), then the daily run a day
later (decay; crossings notified). Target ≤ 120 s for 1M leads.
(b) **One lead on a new fact** — for 1,000 random leads: a touch is saved and
`lead_health_changed` recomputes the lead and its customer; p50 / p99 of the recompute (and of
fact + recompute). Target p99 ≤ 10 ms. Medians over --runs runs.

Environment: SALESLOOP_BENCH_HEALTH_LEADS (1000000), SALESLOOP_BENCH_HEALTH_RUNS (3),
SALESLOOP_BENCH_KEEP=1 (PostgreSQL: keep the seeded database, and measure again on a kept one
without seeding). Each run's first scoring starts with no health rows and no scores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.databases import (
    DEFAULT_PG_ADMIN_URL,
    BenchDatabase,
    inner_run,
    postgresql_database,
    postgresql_drop,
    postgresql_existing,
    postgresql_exists,
    postgresql_unreachable,
    salesloop,
    sqlite_database,
)

TITLE = "health: full recompute of every lead (~5 facts each) and one lead's recompute on a new fact"
TARGET_FULL_S = 120.0
TARGET_FULL_LEADS = 1_000_000
TARGET_P99_MS = 10.0
SINGLE_LEADS = 1_000
PG_DATABASE = "salesloop_bench_health"
NOW = "2026-11-28T04:00:00+00:00"
NOW_ENV = {"SALESLOOP_FAKE_NOW": NOW}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- inside the measuring process (Django set up against the bench database) ---------------------


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesloop.settings")
    import django

    django.setup()


def _ago(vendor: str, days_expr: str, minutes_expr: str) -> str:
    if vendor == "sqlite":
        return f"datetime(%(now)s, '-' || ({days_expr}) || ' days', '-' || ({minutes_expr}) || ' minutes')"
    return (
        f"(%(now)s::timestamptz - ({days_expr}) * interval '1 day' - ({minutes_expr}) * interval '1 minute')"
    )


def _mod(sql: str) -> str:
    # `%` is the parameter marker's escape: the modulo operator must be doubled.
    return sql.replace(" % ", " %% ")


def facts_generate() -> dict[str, Any]:
    """~5 facts per lead, set-based, deterministic (from the lead id)."""
    _django()
    from django.db import connection, transaction

    from salesloop.core import clock

    vendor = connection.vendor
    now = clock.now()
    params = {"now": connection.ops.adapt_datetimefield_value(now) if vendor == "sqlite" else now}
    started = time.perf_counter()
    touches = [
        # (which leads, days ago, direction, responded, customer initiated)
        ("1 = 1", "(id * 7) % 50", "'outbound'",
         "CASE WHEN id % 3 = 0 THEN NULL ELSE (id % 3 = 1) END", "false"),
        ("1 = 1", "(id * 11 + 3) % 50", "'outbound'", "(id % 4 <> 0)", "false"),
        ("1 = 1", "(id * 13 + 5) % 50", "CASE WHEN id % 2 = 0 THEN 'inbound' ELSE 'outbound' END",
         "CASE WHEN id % 2 = 0 THEN true ELSE NULL END", "(id % 4 = 0)"),
        ("id % 2 = 0", "(id * 17 + 1) % 50", "'outbound'", "(id % 5 <> 0)", "false"),
    ]  # fmt: skip
    with transaction.atomic(), connection.cursor() as raw_cursor:
        if vendor == "postgresql":
            raw_cursor.execute("SET LOCAL synchronous_commit = off")

        from django.apps import apps

        models = {model._meta.db_table: model for model in apps.get_models()}

        class cursor:  # every statement below takes %(now)s and uses modulo
            @staticmethod
            def execute(sql: str, values: dict[str, Any]) -> None:
                # Columns added to a table later (with a default) are filled with their default.
                head, _, rest = sql.partition(" (")
                table = head.split()[-1]
                columns, _, select = rest.partition(") SELECT ")
                given = {c.strip() for c in columns.split(",")}
                others = [
                    f
                    for f in models[table]._meta.concrete_fields
                    if f.column not in given and not f.primary_key
                ]
                extra = {
                    f"x{i}": f.get_db_prep_save(f.get_default(), connection) for i, f in enumerate(others)
                }
                if extra:
                    chosen, _, source = select.rpartition(" FROM ")
                    marks = ", ".join(f"%({name})s" for name in extra)
                    names = ", ".join(f.column for f in others)
                    sql = f"{head} ({columns}, {names}) SELECT {chosen}, {marks} FROM {source}"  # noqa: S608
                raw_cursor.execute(_mod(sql), {**values, **extra})

        for where, days, direction, responded, initiated in touches:
            if vendor == "sqlite":
                responded = responded.replace("true", "1").replace("false", "0")
                initiated = initiated.replace("true", "1").replace("false", "0")
            at = _ago(vendor, days, "id % 1440")
            cursor.execute(
                "INSERT INTO engagement_touch (lead_id, contact_id, kind, direction, responded, "  # noqa: S608
                "customer_initiated, at, actor_id, note, created_at) "
                f"SELECT id, NULL, 'call', {direction}, {responded}, {initiated}, {at}, NULL, '', {at} "
                f"FROM crm_lead WHERE {where}",
                params,
            )
        # a tracked proposal and one opening of it for 30% of leads
        cursor.execute(
            "INSERT INTO crm_attachment (lead_id, kind, title, file, url, content_type, size, "
            "uploaded_by_id, created_at, removed_at) "
            "SELECT id, 'proposal', 'bench', '', 'https://example.com/bench/' || id, '', 0, NULL, "
            "%(now)s, NULL "
            "FROM crm_lead WHERE id % 10 < 3",
            params,
        )
        cursor.execute(
            "INSERT INTO engagement_trackeddocument (attachment_id, lead_id, token, created_by_id, "
            "created_at, revoked_at) "
            "SELECT id, lead_id, 'bench' || id, NULL, %(now)s, NULL "
            "FROM crm_attachment WHERE title = 'bench'",
            params,
        )
        at = _ago(vendor, "(lead_id * 3) % 30", "lead_id % 600")
        cursor.execute(
            "INSERT INTO engagement_documentview (document_id, lead_id, view_key, opened_at, "  # noqa: S608
            "last_beat_at, seconds, user_agent) "
            f"SELECT id, lead_id, 'bench' || id, {at}, {at}, (lead_id * 37) % 900, '' "
            "FROM engagement_trackeddocument WHERE substr(token, 1, 5) = 'bench'",
            params,
        )
        at = _ago(vendor, "(id * 5) % 60", "0")
        cursor.execute(
            "INSERT INTO engagement_meeting (lead_id, title, scheduled_at, planned_minutes, status, "  # noqa: S608
            "attended_minutes, minutes_text, online, system, external_id, created_by_id, created_at, "
            "updated_at) "
            f"SELECT id, 'bench', {at}, 60, CASE WHEN id % 5 = 0 THEN 'no_show' ELSE 'attended' END, "
            f"CASE WHEN id % 5 = 0 THEN NULL ELSE 20 + id % 41 END, '', "
            f"{'0' if vendor == 'sqlite' else 'false'}, '', '', NULL, {at}, {at} "
            "FROM crm_lead WHERE id % 10 >= 6",
            params,
        )
        at = _ago(vendor, "(id * 3) % 90", "0")
        cursor.execute(
            "INSERT INTO engagement_budgetmilestone (lead_id, stage, amount_low, amount_high, at, "  # noqa: S608
            "actor_id, note) "
            "SELECT id, CASE id % 4 WHEN 0 THEN 'unknown' WHEN 1 THEN 'range_known' "
            f"WHEN 2 THEN 'confirmed' ELSE 'approved' END, NULL, NULL, {at}, NULL, '' "
            "FROM crm_lead WHERE id % 10 < 3",
            params,
        )
    counts = {}
    with connection.cursor() as cursor:
        for table in (
            "crm_lead",
            "engagement_touch",
            "engagement_documentview",
            "engagement_meeting",
            "engagement_budgetmilestone",
        ):
            if vendor == "postgresql":
                cursor.execute(f"ANALYZE {table}")
            cursor.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608
            counts[table] = cursor.fetchone()[0]
    facts = sum(v for k, v in counts.items() if k != "crm_lead")
    return {"seconds": time.perf_counter() - started, "leads": counts["crm_lead"], "facts": facts}


def _checkpoint() -> None:
    """SQLite: move the WAL the previous step left into the database file before measuring, so the
    background checkpoint (core.sqlite) does not compete with what is measured."""
    from django.db import connection

    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _health_forget() -> None:
    """Every run's first scoring is a first scoring: no health rows, no scores (a database kept
    from an earlier run, or this run's second round, starts from the same state)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM health_leadhealth")
        cursor.execute("UPDATE crm_lead SET health_score = NULL WHERE health_score IS NOT NULL")
        cursor.execute("UPDATE crm_customer SET health_score = NULL WHERE health_score IS NOT NULL")
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE health_leadhealth, crm_lead, crm_customer")
    _checkpoint()


def full_measure() -> dict[str, Any]:
    _django()
    _checkpoint()
    import datetime as dt

    from django.db import connection

    from salesloop.core import clock
    from salesloop.health.services import leads_recompute

    _health_forget()
    now = clock.now()
    started = time.perf_counter()
    first = leads_recompute(now=now, open_only=False, notify=False)
    first_s = time.perf_counter() - started
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE health_leadhealth")
            cursor.execute("ANALYZE crm_lead")
    started = time.perf_counter()
    daily = leads_recompute(now=now + dt.timedelta(days=1), open_only=False, notify=True)
    daily_s = time.perf_counter() - started
    return {
        "leads": first.leads,
        "first_s": first_s,
        "scored": first.scored,
        "daily_s": daily_s,
        "daily_changed": daily.changed,
        "daily_crossed": daily.crossed,
    }


def single_measure() -> dict[str, Any]:
    _django()
    _checkpoint()
    import random

    from django.db import connection, transaction

    from salesloop.engagement.models import Touch
    from salesloop.health.services import lead_health_changed

    with connection.cursor() as cursor:
        cursor.execute("SELECT MIN(id), MAX(id) FROM crm_lead")
        first, last = cursor.fetchone()
    rng = random.Random(20261128)
    ids = [rng.randint(first, last) for _ in range(SINGLE_LEADS + 50)]
    recompute_ms, total_ms = [], []
    for i, lead_id in enumerate(ids):
        started = time.perf_counter()
        with transaction.atomic():
            Touch.objects.create(lead_id=lead_id, kind="call", direction="inbound", responded=True)
            middle = time.perf_counter()
            lead_health_changed(lead_id=lead_id)
            recomputed = time.perf_counter()
        done = time.perf_counter()  # the commit: the engagement service's, with its fact
        if i >= 50:  # warm-up
            recompute_ms.append((recomputed - middle) * 1000)
            total_ms.append((done - started) * 1000)

    def p(samples: list[float], q: int) -> float:
        return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]

    return {
        "p50_ms": statistics.median(recompute_ms),
        "p99_ms": p(recompute_ms, 99),
        "fact_p50_ms": statistics.median(total_ms),
        "fact_p99_ms": p(total_ms, 99),
    }


# ---- the driver ----------------------------------------------------------------------------------


def facts_count() -> dict[str, Any]:
    _django()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT COUNT(*) FROM crm_lead), (SELECT COUNT(*) FROM engagement_touch) + "
            "(SELECT COUNT(*) FROM engagement_documentview) + (SELECT COUNT(*) FROM engagement_meeting) + "
            "(SELECT COUNT(*) FROM engagement_budgetmilestone)"
        )
        leads, facts = cursor.fetchone()
    return {"leads": leads, "facts": facts, "seconds": float("nan")}


def run_one(database: BenchDatabase, leads: int, runs: int, *, reuse: bool = False) -> dict[str, Any]:
    label = f"[health {database.label} {leads:,}]"
    facts = None
    if reuse:
        try:
            facts = inner_run(database, "bench.health", "--part", "count", env=NOW_ENV)
        except RuntimeError:  # created just now: nothing to reuse yet
            facts = None
    if facts and facts["leads"] >= leads:
        say(f"{label} reusing the kept database: {facts['leads']:,} leads, {facts['facts']:,} facts")
    else:
        say(f"{label} migrate, seed")
        salesloop(database, "migrate", "--verbosity", "0")
        started = time.perf_counter()
        salesloop(database, "seed", "--leads", str(leads), "--quiet", timeout=7200)
        seed_s = time.perf_counter() - started
        facts = inner_run(database, "bench.health", "--part", "facts", env=NOW_ENV)
        say(f"{label} seeded in {seed_s:.0f} s; {facts['facts']:,} facts in {facts['seconds']:.1f} s")
    fulls, singles = [], []
    for run in range(runs):
        full = inner_run(database, "bench.health", "--part", "full", env=NOW_ENV)
        fulls.append(full)
        say(f"{label} run {run + 1}: first scoring {full['first_s']:.1f} s, daily {full['daily_s']:.1f} s")
        single = inner_run(database, "bench.health", "--part", "single", env=NOW_ENV)
        singles.append(single)
        say(f"{label} run {run + 1}: one lead p50 {single['p50_ms']:.2f} ms p99 {single['p99_ms']:.2f} ms")
    median = statistics.median
    row = {
        "database": database.label,
        "leads": facts["leads"],
        "facts": facts["facts"],
        "facts_s": round(facts["seconds"], 1),
        "runs": runs,
        "first_s": round(median(f["first_s"] for f in fulls), 1),
        "daily_s": round(median(f["daily_s"] for f in fulls), 1),
        "daily_changed": fulls[-1]["daily_changed"],
        "daily_crossed": fulls[-1]["daily_crossed"],
        "p50_ms": round(median(s["p50_ms"] for s in singles), 2),
        "p99_ms": round(median(s["p99_ms"] for s in singles), 2),
        "fact_p50_ms": round(median(s["fact_p50_ms"] for s in singles), 2),
        "fact_p99_ms": round(median(s["fact_p99_ms"] for s in singles), 2),
    }
    full_ok = max(row["first_s"], row["daily_s"]) <= TARGET_FULL_S
    row["verdict"] = "PASS" if full_ok and row["p99_ms"] <= TARGET_P99_MS else "MISS"
    if row["leads"] < TARGET_FULL_LEADS:
        row["verdict"] += " (<1M)"
    return row


def run(databases: list[str], leads: int | None = None, runs: int | None = None) -> list[dict[str, Any]]:
    leads = leads or int(os.environ.get("SALESLOOP_BENCH_HEALTH_LEADS", str(TARGET_FULL_LEADS)))
    runs = runs or int(os.environ.get("SALESLOOP_BENCH_HEALTH_RUNS", "3"))
    admin_url = os.environ.get("SALESLOOP_BENCH_PG_URL", DEFAULT_PG_ADMIN_URL)
    rows = []
    for kind in databases:
        if kind == "postgresql" and (why := postgresql_unreachable(admin_url)):
            say(f"health: PostgreSQL skipped ({why})")
            continue
        with tempfile.TemporaryDirectory(prefix="salesloop-bench-health-") as tmp:
            # PostgreSQL: SALESLOOP_BENCH_KEEP=1 keeps the seeded database; a later run with it
            # set measures on it again without seeding (seeding 1M leads takes minutes).
            keep = kind == "postgresql" and bool(os.environ.get("SALESLOOP_BENCH_KEEP"))
            if kind == "sqlite":
                database = sqlite_database(Path(tmp))
            elif keep and postgresql_exists(admin_url, name=PG_DATABASE):
                database = postgresql_existing(admin_url, Path(tmp), name=PG_DATABASE)
            else:
                database = postgresql_database(admin_url, Path(tmp), name=PG_DATABASE)
            try:
                rows.append(run_one(database, leads, runs, reuse=keep))
            finally:
                if kind == "postgresql" and not keep:
                    postgresql_drop(admin_url, name=PG_DATABASE)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    columns = [
        "database",
        "leads",
        "facts",
        "first scoring",
        "daily run",
        "one lead p50/p99",
        "fact+recompute p50/p99",
        "target",
    ]
    body = [
        [
            row["database"],
            f"{row['leads']:,}",
            f"{row['facts']:,}",
            f"{row['first_s']:.1f} s",
            f"{row['daily_s']:.1f} s",
            f"{row['p50_ms']:.2f} / {row['p99_ms']:.2f} ms",
            f"{row['fact_p50_ms']:.2f} / {row['fact_p99_ms']:.2f} ms",
            row["verdict"],
        ]
        for row in rows
    ]
    widths = [max(len(columns[i]), *(len(line[i]) for line in body)) for i in range(len(columns))]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(cells)).rstrip()

    rule = "-" * len(line(columns))
    notes = [
        f"target: full recompute ≤ {TARGET_FULL_S:.0f} s at {TARGET_FULL_LEADS:,} leads; "
        f"one lead's recompute p99 ≤ {TARGET_P99_MS:.0f} ms ({SINGLE_LEADS:,} leads); "
        f"medians of {rows[0]['runs'] if rows else 0} runs",
    ]
    return "\n".join([*notes, rule, line(columns), rule, *(line(cells) for cells in body), rule])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--part", choices=["facts", "count", "full", "single"], help=argparse.SUPPRESS)
    parser.add_argument(
        "--databases", default=os.environ.get("SALESLOOP_BENCH_DATABASES", "sqlite,postgresql")
    )
    parser.add_argument("--leads", type=int, default=None)
    parser.add_argument("--runs", type=int, default=None)
    options = parser.parse_args(argv)
    if options.part:
        measure = {
            "facts": facts_generate,
            "count": facts_count,
            "full": full_measure,
            "single": single_measure,
        }[options.part]
        print(json.dumps(measure(), default=str))
        return 0
    rows = run([d.strip() for d in options.databases.split(",") if d.strip()], options.leads, options.runs)
    print(TITLE)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
