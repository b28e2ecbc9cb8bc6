"""Funnel heat-map benchmark (issue 7 item 7; SPEC C5): `python -m bench.insights [--databases
sqlite,postgresql] [--leads 100000,1000000] [--runs 40]`.

For each database and size, on a fresh database (SQLite in a temporary directory, PostgreSQL
`bench_funnel`, dropped afterwards): `salesloop seed --leads N --rework 0.4` (~5 stage moves a lead;
the seed also builds the funnel rollups from the moves, timed apart), then in one measuring process:

- **heat map** — `funnel_heat` for the organisation over the last 90 days, the same for one
  region, for one source over a year, and the cross view stages × regions: p50 / p95 over --runs
  requests each (target p95 ≤ 300 ms at 1M leads);
- **team, rep, cross × reps** — the busiest team's and the busiest rep's funnels and the cross
  views stages × reps (for the organisation and for one region), from the rollups by owner: p50 /
  p95 over --runs requests each, same target;
- **DuckDB reference** — the same facts (moves with their lead's region, source and arrival; the
  open leads) exported once to Parquet by DuckDB's own writer, then the same organisation heat map
  (entries, conversion, exits, mean and exact median dwell, backward rate, pile-up) computed by
  DuckDB from the raw facts with window functions: p50 over the runs, and our p50 ÷ DuckDB's. The
  per-stage entries and exits are checked equal to ours.

Prints one table (stderr has progress), with the load average before and after each row.
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
    postgresql_database,
    postgresql_drop,
    postgresql_unreachable,
    salesloop,
)

TITLE = "insights: funnel heat map (rollups) against DuckDB over the raw facts"
TARGET_P95_MS = 300.0
PG_DATABASE = "bench_funnel"
REWORK = "0.4"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _timed(function: Any, runs: int) -> dict[str, float]:
    function()  # warm the caches and the connection once
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": statistics.median(samples), "p95_ms": _percentile(samples, 0.95), "runs": runs}


# ---- inside the measuring process ---------------------------------------------------------------


def measure(runs: int, export_dir: Path) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesloop.settings")
    import django

    django.setup()
    from django.db.models import Count

    from salesloop.accounts.models import Region, User
    from salesloop.crm.models import Lead
    from salesloop.insights.funnel import funnel_cross, funnel_heat, funnel_query_parse
    from salesloop.pipeline.models import StageMove

    director = User.objects.filter(role="director").first() or User.objects.filter(is_superuser=True).first()
    region = Region.objects.order_by("id").first()
    busiest = (
        Lead.objects.filter(owner__isnull=False)
        .values("owner_id")
        .annotate(n=Count("id"))
        .order_by("-n")
        .first()
    )
    rep = User.objects.get(pk=busiest["owner_id"])
    team_id = rep.team_id
    org_query = funnel_query_parse(user=director, params={})
    region_query = funnel_query_parse(user=director, params={"region": region.pk})
    cases = {
        "org 90 days": lambda: funnel_heat(query=org_query),
        "region 90 days": lambda: funnel_heat(
            query=funnel_query_parse(user=director, params={"region": region.pk})
        ),
        "org douyin 365 days": lambda: funnel_heat(
            query=funnel_query_parse(
                user=director,
                params={
                    "source": "douyin",
                    "start": (org_query.end.replace(year=org_query.end.year - 1)).isoformat(),
                },
            )
        ),
        "cross × regions": lambda: funnel_cross(query=org_query, by="region"),
        f"rep ({busiest['n']:,} leads) 90 days": lambda: funnel_heat(
            query=funnel_query_parse(user=director, params={"rep": rep.pk})
        ),
        "cross × reps, org": lambda: funnel_cross(query=org_query, by="rep"),
        "cross × reps, region": lambda: funnel_cross(query=region_query, by="rep"),
    }
    if team_id is not None:
        team_leads = Lead.objects.filter(owner__team_id=team_id).count()
        cases[f"team ({team_leads:,} leads) 90 days"] = lambda: funnel_heat(
            query=funnel_query_parse(user=director, params={"team": team_id})
        )
    results: dict[str, Any] = {"cases": {}}
    for name, function in cases.items():
        results["cases"][name] = _timed(function, runs)
        say(f"    {name}: p95 {results['cases'][name]['p95_ms']:.1f} ms")
    results["leads"] = Lead.objects.count()
    results["moves"] = StageMove.objects.count()
    results["duckdb"] = duckdb_reference(org_query, export_dir, runs=max(5, runs // 4))
    ours = {row.code: (row.passed, row.exits) for row in funnel_heat(query=org_query).stages}
    theirs = {code: (row["entries"], row["exits"]) for code, row in results["duckdb"]["stages"].items()}
    results["duckdb"]["matches"] = all(ours[code] == theirs.get(code, (0, 0)) for code in ours)
    return results


DUCKDB_HEAT = """
WITH ordered AS (
    SELECT *, (from_code IS NULL OR from_code <> to_code) AS begins_stay,
           max(CASE WHEN from_code IS NULL OR from_code <> to_code THEN moved_at END) OVER (
               PARTITION BY lead_id ORDER BY moved_at, id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
           ) AS stay_start
    FROM read_parquet('{moves}')
), local AS (
    SELECT *, CAST(moved_at + INTERVAL 8 HOUR AS DATE) AS day,
           CAST(stay_start + INTERVAL 8 HOUR AS DATE) AS stay_day,
           epoch(moved_at) - epoch(stay_start) AS dwell
    FROM ordered
), entries AS (
    SELECT to_code AS stage, count(*) AS entries FROM local
    WHERE begins_stay AND day BETWEEN DATE '{start}' AND DATE '{end}' GROUP BY 1
), converted AS (
    SELECT from_code AS stage, count(*) AS converted FROM local
    WHERE from_status = 'open' AND direction = 'forward' AND stay_day BETWEEN DATE '{start}' AND DATE '{end}'
    GROUP BY 1
), exits AS (
    SELECT from_code AS stage, count(*) AS exits, avg(dwell) / 86400 AS dwell_mean,
           quantile_cont(dwell, 0.5) / 86400 AS dwell_median,
           count(*) FILTER (WHERE direction = 'backward') / count(*) AS backward_rate
    FROM local WHERE from_code IS NOT NULL AND from_status = 'open'
      AND day BETWEEN DATE '{start}' AND DATE '{end}' GROUP BY 1
), piled AS (
    SELECT stage, count(*) AS piled_up, avg(epoch(TIMESTAMP '{now}') - epoch(entered)) / 86400 AS pile_age
    FROM read_parquet('{open}') GROUP BY 1
)
SELECT coalesce(e.stage, x.stage, p.stage) AS stage, coalesce(entries, 0) AS entries,
       coalesce(converted, 0) AS converted, coalesce(exits, 0) AS exits, dwell_mean, dwell_median,
       backward_rate, coalesce(piled_up, 0) AS piled_up, pile_age
FROM entries e FULL JOIN exits x USING (stage) FULL JOIN piled p USING (stage)
LEFT JOIN converted c ON c.stage = coalesce(e.stage, x.stage, p.stage)
"""


def duckdb_reference(query: Any, export_dir: Path, *, runs: int) -> dict[str, Any]:
    """Export the facts once (streamed to CSV, written to Parquet by DuckDB), then time DuckDB's
    heat map over them."""
    import csv

    import duckdb
    from django.db import connection
    from django.db.models.fields.json import KT

    from salesloop.core import clock
    from salesloop.crm.models import Lead
    from salesloop.insights.funnel_rollup import stage_codes
    from salesloop.pipeline.models import StageMove

    started = time.perf_counter()
    codes = stage_codes()
    moves_csv, open_csv = export_dir / "moves.csv", export_dir / "open.csv"
    with open(moves_csv, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["id", "lead_id", "from_code", "to_code", "from_status", "to_status", "direction", "moved_at"]
        )
        rows = StageMove.objects.order_by().values_list(
            "id", "lead_id", "from_stage_id", "to_stage_id", "from_status", "to_status",
            KT("explanation__direction"), "at",
        )  # fmt: skip
        for mid, lead_id, from_id, to_id, from_status, to_status, direction, at in rows.iterator(
            chunk_size=20_000
        ):
            # UTC wall time; DuckDB adds the 8 hours of Asia/Shanghai itself, as we count days there
            writer.writerow(
                [mid, lead_id, codes[from_id] if from_id else "", codes[to_id], from_status, to_status,
                 direction or "", at.strftime("%Y-%m-%d %H:%M:%S.%f")]
            )  # fmt: skip
    with open(open_csv, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["stage", "entered"])
        for stage_id, entered in (
            Lead.objects.filter(status="open")
            .values_list("stage_id", "stage_entered_at")
            .iterator(chunk_size=20_000)
        ):
            writer.writerow([codes[stage_id], entered.strftime("%Y-%m-%d %H:%M:%S.%f")])
    connection.close()
    db = duckdb.connect()
    moves_parquet, open_parquet = export_dir / "moves.parquet", export_dir / "open.parquet"
    db.execute(
        f"COPY (SELECT * FROM read_csv('{moves_csv}', header=true, nullstr='', "  # noqa: S608 -- our temp paths
        "types={'moved_at': 'TIMESTAMP', 'from_code': 'VARCHAR', 'direction': 'VARCHAR'})) "
        f"TO '{moves_parquet}' (FORMAT parquet)"
    )
    db.execute(
        f"COPY (SELECT * FROM read_csv('{open_csv}', header=true, types={{'entered': 'TIMESTAMP'}})) "  # noqa: S608
        f"TO '{open_parquet}' (FORMAT parquet)"
    )
    export_seconds = time.perf_counter() - started
    sql = DUCKDB_HEAT.format(
        moves=moves_parquet,
        open=open_parquet,
        start=query.start.isoformat(),
        end=query.end.isoformat(),
        now=clock.now().strftime("%Y-%m-%d %H:%M:%S"),
    )
    timing = _timed(lambda: db.execute(sql).fetchall(), runs)
    columns = [d[0] for d in db.execute(sql).description]
    stages = {row[0]: dict(zip(columns, row, strict=True)) for row in db.execute(sql).fetchall()}
    return {**timing, "export_seconds": export_seconds, "stages": stages}


# ---- the driver ------------------------------------------------------------------------------------


def run_one(kind: str, leads: int, runs: int, admin_url: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-funnel-") as tmp:
        var_dir = Path(tmp)
        database = (
            BenchDatabase("sqlite", f"sqlite:///{var_dir / 'bench.sqlite3'}", var_dir)
            if kind == "sqlite"
            else postgresql_database(admin_url, var_dir, name=PG_DATABASE)
        )
        try:
            say(f"{database.label} {leads:,} leads: migrate, seed (--rework {REWORK})")
            salesloop(database, "migrate", "-v0")
            started = time.perf_counter()
            seeded = salesloop(database, "seed", "--leads", str(leads), "--rework", REWORK, "--quiet")
            del seeded
            seed_seconds = time.perf_counter() - started
            load_before = os.getloadavg()[0]
            say("  measuring")
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.insights",
                    "--measure",
                    "--runs",
                    str(runs),
                    "--export-dir",
                    tmp,
                ],
                env=database.env(),
                cwd=PROJECT_DIR,
                capture_output=True,
                text=True,
                timeout=7200,
                check=False,
            )
            sys.stderr.write(done.stderr[-3000:])
            if done.returncode != 0:
                raise RuntimeError(f"measuring failed: {done.stderr[-3000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result.update(
                database=database.label,
                seed_seconds=seed_seconds,
                load_before=load_before,
                load_after=os.getloadavg()[0],
            )
            return result
        finally:
            if kind == "postgresql":
                postgresql_drop(admin_url, name=PG_DATABASE)


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{'database':<11}{'leads':>11}{'moves':>12}  {'case':<32}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'DuckDB p50':>12}{'ratio':>8}  {'load':>10}  verdict",
    ]
    for row in rows:
        duck = row["duckdb"]
        for name, case in row["cases"].items():
            is_org = name == "org 90 days"
            target = "ok" if case["p95_ms"] <= TARGET_P95_MS else "over 300 ms"
            lines.append(
                f"{row['database']:<11}{row['leads']:>11,}{row['moves']:>12,}  {name:<32}"
                f"{case['p50_ms']:>9.1f}{case['p95_ms']:>9.1f}"
                + (f"{duck['p50_ms']:>12.1f}{case['p50_ms'] / duck['p50_ms']:>8.2f}" if is_org else " " * 20)
                + f"  {row['load_before']:>4.1f}→{row['load_after']:<4.1f}  {target}"
            )
        lines.append(
            f"{'':<11}seed {row['seed_seconds']:.0f} s; DuckDB export {duck['export_seconds']:.0f} s; "
            f"DuckDB per-stage entries and exits equal ours: {'yes' if duck['matches'] else 'NO'}"
        )
    return "\n".join(lines)


def run(databases: list[str], sizes: list[int] | None = None, runs: int = 40) -> list[dict[str, Any]]:
    """`make bench`: SALESLOOP_BENCH_INSIGHTS_LEADS (default 100000,1000000) on each database."""
    sizes = sizes or [
        int(n) for n in os.environ.get("SALESLOOP_BENCH_INSIGHTS_LEADS", "100000,1000000").split(",")
    ]
    admin_url = os.environ.get("SALESLOOP_BENCH_PG_ADMIN_URL", DEFAULT_PG_ADMIN_URL)
    rows = []
    for size in sizes:
        for kind in databases:
            if kind == "postgresql" and (why := postgresql_unreachable(admin_url)):
                say(f"PostgreSQL skipped: {why}")
                continue
            rows.append(run_one(kind, size, runs, admin_url))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--leads", default="100000")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--export-dir", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.runs, Path(args.export_dir)), default=str))
        return
    admin_url = os.environ.get("SALESLOOP_BENCH_PG_ADMIN_URL", DEFAULT_PG_ADMIN_URL)
    rows = []
    for size in (int(n) for n in args.leads.split(",")):
        for kind in args.databases.split(","):
            if kind == "postgresql" and (why := postgresql_unreachable(admin_url)):
                say(f"PostgreSQL skipped: {why}")
                continue
            rows.append(run_one(kind, size, args.runs, admin_url))
    print(TITLE)
    print(table(rows))


if __name__ == "__main__":
    main()
