"""Leading-indicator benchmarks (issue 7 item 7; SPEC C9): `make bench` runs `run(databases)` and
prints `table(rows)`; `python -m bench.indicators [--databases sqlite,postgresql] [--leads N]` does
the same alone.

For each database (fresh: SQLite in a temporary directory, PostgreSQL `bench_ind`, dropped
afterwards): `salesloop seed --leads N --touches` (default 1,000,000 leads, ~3 stage moves and as
many outbound touches each; the indicator facts and day ledgers rebuilt), then `ANALYZE`.

Measured live from the facts, nothing precomputed for the request (docs/indicators.md), for four
scopes — the organisation, the largest region, a team, the busiest rep — and each of the last 8
weeks, 3 times:
- **one period**: what `GET /api/v1/insights/indicators?scope=…&from=W&to=W` computes — the three
  indicators with status (the week before for "two weeks in a row" and the 报价谈判 drop, the
  period before for entering warning): the thresholds and one day-ledger query per indicator.
  Target p95 ≤ 300 ms at 1M leads.
- **inputs**: the three formulas' inputs for that period alone (3 day-ledger queries), the part
  DuckDB also does.
- **DuckDB**: the same three aggregations over an export (CSV → in-memory tables) of the per-lead
  derived facts (arrivals, stays, outbound touches), in the same run, as the reference for what the
  hardware allows; its numbers are checked equal to salesloop's. Ratio = salesloop inputs p50 ÷
  DuckDB p50.

Environment: SALESLOOP_BENCH_INDICATORS_LEADS (1000000), SALESLOOP_BENCH_INDICATORS_PG_DB (bench_ind).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.databases import (
    DEFAULT_PG_ADMIN_URL,
    PROJECT_DIR,
    BenchDatabase,
    inner_run,
    postgresql_database,
    postgresql_drop,
    postgresql_unreachable,
    salesloop,
    sqlite_database,
)

TITLE = "indicators: three leading indicators for one scope and one period, live from the facts"
TARGET_P95_MS = 300.0
TARGET_LEADS = 1_000_000
PG_DATABASE = os.environ.get("SALESLOOP_BENCH_INDICATORS_PG_DB", "bench_ind")
NOW = "2026-11-28T04:00:00+00:00"
NOW_ENV = {"SALESLOOP_FAKE_NOW": NOW}
WEEKS = 8
REPEAT = 3


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesloop.settings")
    import django

    django.setup()


def _p(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] if len(samples) > 1 else samples[0]


def _scopes() -> list[Any]:
    from django.db.models import Count

    from salesloop.accounts.models import Team
    from salesloop.crm.models import Lead
    from salesloop.insights.indicators.compute import Scope

    region = Lead.objects.values("region_id").annotate(n=Count("id")).order_by("-n").first()
    rep = (
        Lead.objects.filter(owner__isnull=False)
        .values("owner_id")
        .annotate(n=Count("id"))
        .order_by("-n")
        .first()
    )
    team = Team.objects.filter(members__isnull=False).order_by("pk").first()
    scopes = [Scope("org", 0, "org")]
    if region:
        scopes.append(Scope("region", region["region_id"], "largest region"))
    if team:
        scopes.append(Scope("team", team.pk, "a team"))
    if rep:
        scopes.append(Scope("rep", rep["owner_id"], "busiest rep"))
    return scopes


def _export(directory: Path) -> dict[str, Any]:
    """The per-lead derived facts the indicators read, and the users' teams, as CSV files."""
    import csv

    from django.db import connection

    started = time.perf_counter()
    queries = {
        "ind_lead": "SELECT lead_id, region_id, owner_id, arrived_at, needs_confirmed_at "
        "FROM insights_indicatorlead",
        "ind_span": "SELECT lead_id, region_id, owner_id, rank, entered_at, entered_s, left_at "
        "FROM insights_indicatorspan",
        "ind_touch": "SELECT touch_id, lead_id, region_id, owner_id, at, rank, responded "
        "FROM insights_indicatortouch",
        "users": "SELECT id, team_id FROM accounts_user",
    }
    rows = 0
    for name, sql in queries.items():
        with open(directory / f"{name}.csv", "w", newline="") as out, connection.cursor() as cursor:
            writer = csv.writer(out)
            cursor.execute(sql)
            writer.writerow([c[0] for c in cursor.description])
            while batch := cursor.fetchmany(50_000):
                writer.writerows(
                    [
                        [
                            (
                                v.isoformat().replace("+00:00", "")
                                if hasattr(v, "isoformat")
                                else (int(v) if isinstance(v, bool) else v)
                            )
                            for v in row
                        ]
                        for row in batch
                    ]
                )
                rows += len(batch)
    return {"export_s": time.perf_counter() - started, "rows": rows}


DUCK_SQL = {
    "conversion": """SELECT COUNT(*), COUNT(*) FILTER (WHERE l.needs_confirmed_at < $instant)
        FROM ind_lead l {join} WHERE l.arrived_at >= $since AND l.arrived_at < $instant {where}""",
    "stall": """SELECT s.rank, COUNT(*), SUM(s.entered_s) FROM ind_span s {join}
        WHERE s.left_at >= $instant AND s.entered_at < $instant {where} GROUP BY s.rank ORDER BY s.rank""",
    "response": """SELECT COUNT(*), COUNT(*) FILTER (WHERE t.responded),
        COUNT(*) FILTER (WHERE t.rank = 4), COUNT(*) FILTER (WHERE t.rank = 4 AND t.responded)
        FROM ind_touch t {join} WHERE t.at >= $start AND t.at < $instant {where}""",
}


def _duck_query(indicator: str, scope: Any) -> str:
    alias = {"conversion": "l", "stall": "s", "response": "t"}[indicator]
    where = ""
    if scope.kind == "region":
        where = f"AND {alias}.region_id = {int(scope.id)}"
    elif scope.kind == "rep":
        where = f"AND {alias}.owner_id = {int(scope.id)}"
    elif scope.kind == "team":
        where = f"AND {alias}.owner_id IN (SELECT id FROM users WHERE team_id = {int(scope.id)})"  # noqa: S608 -- an integer id
    return DUCK_SQL[indicator].format(join="", where=where)


def measure() -> dict[str, Any]:
    _django()
    import datetime as dt

    import duckdb
    from django.db import connection

    from salesloop.core import clock
    from salesloop.insights.indicators.compute import INPUTS, conversion_window
    from salesloop.insights.indicators.periods import period_of
    from salesloop.insights.indicators.selectors import indicator_series
    from salesloop.insights.indicators.thresholds import thresholds_in_force

    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    now = clock.now()
    thresholds = thresholds_in_force(now)
    this_week = period_of(now.astimezone(clock.org_tz()).date(), "week")
    weeks = [this_week.shifted(-n) for n in range(WEEKS)]
    scopes = _scopes()
    out: dict[str, Any] = {"scopes": {}}
    with tempfile.TemporaryDirectory(prefix="salesloop-bench-ind-") as tmp:
        exported = _export(Path(tmp))
        out["export_s"], out["exported_rows"] = exported["export_s"], exported["rows"]
        duck = duckdb.connect()
        started = time.perf_counter()
        for name in ("ind_lead", "ind_span", "ind_touch", "users"):
            duck.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv_auto('{Path(tmp) / name}.csv')")  # noqa: S608
        out["duck_load_s"] = time.perf_counter() - started
        for scope in scopes:
            one, inputs, reference, mismatches = [], [], [], 0
            # untimed warm-up: the process's first request loads translations and query plans
            indicator_series(
                scope=scope, granularity="week", first=weeks[0].start, last=weeks[0].start, now=now
            )
            for _ in range(REPEAT):
                for week in weeks:
                    started = time.perf_counter()
                    indicator_series(
                        scope=scope, granularity="week", first=week.start, last=week.start, now=now
                    )
                    one.append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    ours = {name: f(scope, week, thresholds, now) for name, f in INPUTS.items()}
                    inputs.append((time.perf_counter() - started) * 1000)
                    since, instant = conversion_window(week, thresholds, now)
                    params = {
                        "instant": instant.astimezone(dt.UTC).replace(tzinfo=None),
                        "since": since.astimezone(dt.UTC).replace(tzinfo=None),
                        "start": week.starts_at.astimezone(dt.UTC).replace(tzinfo=None),
                    }
                    started = time.perf_counter()
                    theirs = {}
                    for name in INPUTS:
                        sql = _duck_query(name, scope)
                        used = {k: v for k, v in params.items() if f"${k}" in sql}
                        theirs[name] = duck.execute(sql, used).fetchall()
                    reference.append((time.perf_counter() - started) * 1000)
                    # the same numbers, or the comparison means nothing
                    conv = theirs["conversion"][0]
                    stall_leads = sum(r[1] for r in theirs["stall"])
                    resp = theirs["response"][0]
                    if (
                        (conv[0], conv[1]) != (ours["conversion"].denominator, ours["conversion"].numerator)
                        or stall_leads != ours["stall"].denominator
                        or (resp[0], resp[1]) != (ours["response"].denominator, ours["response"].numerator)
                    ):
                        mismatches += 1
            out["scopes"][f"{scope.kind}:{scope.label}"] = {
                "one_p50": statistics.median(one),
                "one_p95": _p(one, 95),
                "inputs_p50": statistics.median(inputs),
                "inputs_p95": _p(inputs, 95),
                "duck_p50": statistics.median(reference),
                "duck_p95": _p(reference, 95),
                "samples": len(one),
                "mismatches": mismatches,
                "cohort": ours["conversion"].denominator,
                "open": ours["stall"].denominator,
                "period_touches": ours["response"].denominator,
            }
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM crm_lead")
        out["leads"] = cursor.fetchone()[0]
        cursor.execute("SELECT COUNT(*) FROM pipeline_stagemove")
        out["moves"] = cursor.fetchone()[0]
        cursor.execute("SELECT COUNT(*) FROM engagement_touch")
        out["touches"] = cursor.fetchone()[0]
    return out


def analyze() -> dict[str, Any]:
    _django()
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"seconds": time.perf_counter() - started}


def run_one(database: BenchDatabase, leads: int) -> list[dict[str, Any]]:
    label = f"[indicators {database.label} {leads:,}]"
    say(f"{label} migrate, seed with touches")
    salesloop(database, "migrate", "--verbosity", "0")
    started = time.perf_counter()
    # the seed's "now" is the measurement's: histories end where the measured weeks end
    done = subprocess.run(
        [sys.executable, "-m", "salesloop.cli", "seed", "--leads", str(leads), "--touches", "--quiet"],
        env={**database.env(), "SALESLOOP_FAKE_NOW": NOW},
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=14400,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"seed failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
    seed_s = time.perf_counter() - started
    inner_run(database, "bench.indicators", "--part", "analyze", env=NOW_ENV)
    say(f"{label} seeded in {seed_s:.0f} s; measuring")
    result = inner_run(database, "bench.indicators", "--part", "measure", env=NOW_ENV)
    rows = []
    for scope, figures in result["scopes"].items():
        row = {
            "database": database.label,
            "leads": result["leads"],
            "moves": result["moves"],
            "touches": result["touches"],
            "seed_s": round(seed_s),
            "scope": scope,
            "load": os.getloadavg()[0],
            "duck_load_s": round(result["duck_load_s"], 1),
            "export_s": round(result["export_s"], 1),
            **{k: (round(v, 1) if isinstance(v, float) else v) for k, v in figures.items()},
        }
        row["ratio"] = round(figures["inputs_p50"] / figures["duck_p50"], 1) if figures["duck_p50"] else None
        verdict = "PASS" if figures["one_p95"] <= TARGET_P95_MS else "MISS"
        row["verdict"] = verdict + ("" if result["leads"] >= TARGET_LEADS else " (<1M)")
        rows.append(row)
        say(
            f"{label} {scope}: one period p50 {row['one_p50']} p95 {row['one_p95']} ms; "
            f"DuckDB {row['duck_p50']} ms"
        )
    return rows


def run(databases: list[str], leads: int | None = None) -> list[dict[str, Any]]:
    leads = leads or int(os.environ.get("SALESLOOP_BENCH_INDICATORS_LEADS", str(TARGET_LEADS)))
    admin_url = os.environ.get("SALESLOOP_BENCH_PG_URL", DEFAULT_PG_ADMIN_URL)
    rows: list[dict[str, Any]] = []
    for kind in databases:
        if kind == "postgresql" and (why := postgresql_unreachable(admin_url)):
            say(f"indicators: PostgreSQL skipped ({why})")
            continue
        with tempfile.TemporaryDirectory(prefix="salesloop-bench-indicators-") as tmp:
            if kind == "sqlite":
                database = sqlite_database(Path(tmp))
            else:
                database = postgresql_database(admin_url, Path(tmp), name=PG_DATABASE)
            try:
                rows += run_one(database, leads)
            finally:
                if kind == "postgresql" and not os.environ.get("SALESLOOP_BENCH_KEEP"):
                    postgresql_drop(admin_url, name=PG_DATABASE)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    columns = ["database", "leads", "scope", "cohort/open/touches", "one period p50/p95", "inputs p50",
               "DuckDB p50", "ratio", "load", "target"]  # fmt: skip
    body = [
        [
            row["database"],
            f"{row['leads']:,}",
            row["scope"],
            f"{row['cohort']:,}/{row['open']:,}/{row['period_touches']:,}",
            f"{row['one_p50']:.1f} / {row['one_p95']:.1f} ms",
            f"{row['inputs_p50']:.1f} ms",
            f"{row['duck_p50']:.1f} ms",
            f"{row['ratio']}×" if row["ratio"] is not None else "—",
            f"{row['load']:.1f}",
            row["verdict"] + (f" ({row['mismatches']} mismatches)" if row["mismatches"] else ""),
        ]
        for row in rows
    ]
    widths = [max(len(columns[i]), *(len(line[i]) for line in body)) for i in range(len(columns))]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(cells)).rstrip()

    rule = "-" * len(line(columns))
    first = rows[0] if rows else {}
    notes = [
        f"target: one scope, one period (3 indicators with status) p95 ≤ {TARGET_P95_MS:.0f} ms at "
        f"{TARGET_LEADS:,} leads; {WEEKS} weeks × {REPEAT} runs per scope; load = 1-min load average",
        *(
            [
                f"{first['moves']:,} stage moves, {first['touches']:,} touches; "
                f"export {first['export_s']} s, "
                f"DuckDB load {first['duck_load_s']} s (not in the timings)"
            ]
            if first
            else []
        ),
    ]
    return "\n".join([*notes, rule, line(columns), rule, *(line(cells) for cells in body), rule])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--part", choices=["measure", "analyze"], help=argparse.SUPPRESS)
    parser.add_argument(
        "--databases", default=os.environ.get("SALESLOOP_BENCH_DATABASES", "sqlite,postgresql")
    )
    parser.add_argument("--leads", type=int, default=None)
    options = parser.parse_args(argv)
    if options.part:
        print(json.dumps({"measure": measure, "analyze": analyze}[options.part](), default=str))
        return 0
    rows = run([d.strip() for d in options.databases.split(",") if d.strip()], options.leads)
    print(TITLE)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
