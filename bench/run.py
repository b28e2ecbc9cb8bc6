"""`python -m bench`: seed rate and lead-list latency on SQLite and PostgreSQL, as one table."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.databases import (
    DEFAULT_PG_ADMIN_URL,
    PROJECT_DIR,
    BenchDatabase,
    postgresql_database,
    postgresql_drop,
    postgresql_unreachable,
    salesloop,
    sqlite_database,
)
from bench.server import ApiClient, Server

TARGET_P95_MS = 100.0  # at 1M leads, with a filter (stage or owner)
TARGET_LEADS = 1_000_000
PAGE = 20  # the deep page: reached by following next_cursor
PAGE_SIZE = 50
WARMUP = 20
SEED = 42
# Who asks, and whose leads the owner filter asks for. A director sees every lead; a regional
# manager sees their region's leads and their reps' leads (an OR across a join). 东北 is the
# smallest region, so its manager's lists must skip the most rows of other regions.
VIEWERS = [("director", "director", "rep_east_1"), ("manager", "manager_northeast", "rep_northeast_1")]
CASES = ["all", "stage", "won", "owner", f"page{PAGE}"]
CASE_TITLES = {
    "all": "no filter",
    "stage": "stage=solution_demo",
    # Recent leads are still in early stages, so the newest won lead is far down the id order:
    # the case that shows whether the (stage, -id) index is used rather than the primary key.
    "won": "stage=contract_signed",
    "owner": "owner=rep",
    f"page{PAGE}": f"page {PAGE}",
}
FILTER_CASES = ("stage", "won", "owner")


@dataclass
class Latency:
    p50_ms: float
    p95_ms: float
    mean_ms: float
    requests: int
    path: str


@dataclass
class Row:
    database: str
    leads: int
    viewer: str
    seed_seconds: float
    seed_leads_per_second: float
    seed_inner_leads_per_second: float | None
    cases: dict[str, Latency] = field(default_factory=dict)
    plans: dict[str, str] = field(default_factory=dict)  # EXPLAIN output, by case

    @property
    def worst_filtered_p95(self) -> float:
        return max(self.cases[case].p95_ms for case in FILTER_CASES if case in self.cases)

    @property
    def verdict(self) -> str:
        return "PASS" if self.worst_filtered_p95 <= TARGET_P95_MS else "MISS"


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def say(message: str) -> None:
    """Progress goes to stderr: stdout carries only the table."""
    print(message, file=sys.stderr, flush=True)


def measure(client: ApiClient, path: str, requests: int) -> Latency:
    for _ in range(WARMUP):
        client.get(path)
    samples = [client.get(path)[0] * 1000 for _ in range(requests)]
    return Latency(
        p50_ms=statistics.median(samples),
        p95_ms=statistics.quantiles(samples, n=100, method="inclusive")[94],
        mean_ms=statistics.fmean(samples),
        requests=requests,
        path=path,
    )


def leads_path(**params: Any) -> str:
    return "/api/v1/leads?" + urlencode({**params, "limit": PAGE_SIZE})


def seed(database: BenchDatabase, leads: int) -> tuple[float, float | None]:
    """(wall seconds of the whole `salesloop seed` run, the rate the command reports itself)."""
    started = time.perf_counter()
    done = salesloop(database, "seed", "--leads", str(leads), "--seed", str(SEED), timeout=7200)
    seconds = time.perf_counter() - started
    reported = re.search(r"([\d,]+) leads/s\s*$", done.stdout.strip())
    return seconds, float(reported.group(1).replace(",", "")) if reported else None


def token(database: BenchDatabase, username: str) -> str:
    return salesloop(database, "token", "create", username, "--name", "bench").stdout.strip().splitlines()[-1]


def run_one(database: BenchDatabase, leads: int, requests: int, explain: bool) -> list[Row]:
    say(f"[{database.label} {leads:,}] migrate")
    salesloop(database, "migrate", "--verbosity", "0")
    say(f"[{database.label} {leads:,}] seed --leads {leads}")
    seed_seconds, inner_rate = seed(database, leads)
    say(f"[{database.label} {leads:,}] seeded in {seed_seconds:.1f} s ({leads / seed_seconds:,.0f} leads/s)")
    tokens = {
        name: token(database, name)
        for _, viewer_name, owner_name in VIEWERS
        for name in (viewer_name, owner_name)
    }

    rows: list[Row] = []
    with Server(database) as server:
        for viewer, username, owner_username in VIEWERS:
            owner = ApiClient(server.port, tokens[owner_username])
            owner_id = owner.get("/api/v1/me")[1]["id"]
            owner.close()
            client = ApiClient(server.port, tokens[username])
            # The cursor of page PAGE, reached the way a client would: page by page.
            cursor = None
            for _ in range(PAGE - 1):
                cursor = client.get(leads_path(**({"cursor": cursor} if cursor else {})))[1]["next_cursor"]
                if cursor is None:
                    break
            paths = {
                "all": leads_path(),
                "stage": leads_path(stage="solution_demo"),
                "won": leads_path(stage="contract_signed"),
                "owner": leads_path(owner=owner_id),
                f"page{PAGE}": leads_path(cursor=cursor) if cursor else leads_path(),
            }
            row = Row(
                database=database.label,
                leads=leads,
                viewer=viewer,
                seed_seconds=round(seed_seconds, 1),
                seed_leads_per_second=round(leads / seed_seconds),
                seed_inner_leads_per_second=inner_rate,
            )
            for case in CASES:
                row.cases[case] = measure(client, paths[case], requests)
                say(
                    f"[{database.label} {leads:,}] {viewer:<8} {CASE_TITLES[case]:<20} "
                    f"p50 {row.cases[case].p50_ms:6.1f} ms  p95 {row.cases[case].p95_ms:6.1f} ms"
                )
            client.close()
            rows.append(row)
            # The plan of every case that misses the target (of every case with SALESLOOP_BENCH_EXPLAIN=1).
            for case in CASES:
                if explain or row.cases[case].p95_ms > TARGET_P95_MS:
                    plan = salesloop_python(
                        database, "bench.explain", username, paths[case].partition("?")[2]
                    )
                    row.plans[case] = plan
                    say(plan)
    return rows


def salesloop_python(database: BenchDatabase, module: str, *args: str) -> str:
    """Output of `python -m MODULE ARGS` in the run's environment (for EXPLAIN)."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        env=database.env(),
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    return done.stdout + (done.stderr[-2000:] if done.returncode else "")


def table(rows: list[Row], header: list[str]) -> str:
    columns = ["database", "leads", "seed", "viewer", *[f"{CASE_TITLES[c]} p50/p95" for c in CASES], "target"]
    body: list[list[str]] = []
    previous: tuple[str, int] | None = None
    for row in rows:
        first_of_run = previous != (row.database, row.leads)
        previous = (row.database, row.leads)
        seed_text = f"{row.seed_leads_per_second:,.0f}/s ({row.seed_seconds:,.0f} s)" if first_of_run else ""
        body.append(
            [
                row.database if first_of_run else "",
                f"{row.leads:,}" if first_of_run else "",
                seed_text,
                row.viewer,
                *[f"{row.cases[c].p50_ms:.1f} / {row.cases[c].p95_ms:.1f}" for c in CASES],
                f"{row.verdict}" + ("" if row.leads >= TARGET_LEADS else " (<1M)"),
            ]
        )
    widths = [max(len(columns[i]), *(len(line[i]) for line in body)) for i in range(len(columns))]
    right = {1, 2, *range(4, 4 + len(CASES))}

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(cells)
        ).rstrip()

    rule = "-" * len(line(columns))
    return "\n".join([*header, rule, line(columns), rule, *(line(cells) for cells in body), rule])


def main() -> int:
    sizes = [int(size) for size in _env_list("SALESLOOP_BENCH_SIZES", "100000,1000000")]
    databases = _env_list("SALESLOOP_BENCH_DATABASES", "sqlite,postgresql")
    requests = int(os.environ.get("SALESLOOP_BENCH_REQUESTS", "200"))
    explain = os.environ.get("SALESLOOP_BENCH_EXPLAIN", "") not in ("", "0")
    pg_admin_url = os.environ.get("SALESLOOP_BENCH_PG_URL", DEFAULT_PG_ADMIN_URL)
    # e.g. "random_page_cost=1.1": server settings to try, applied to the bench database only.
    pg_settings = dict(
        item.split("=", 1) for item in _env_list("SALESLOOP_BENCH_PG_SETTINGS", "") if "=" in item
    )
    unknown = set(databases) - {"sqlite", "postgresql"}
    if unknown:
        print(f"SALESLOOP_BENCH_DATABASES: unknown {sorted(unknown)}; use sqlite,postgresql", file=sys.stderr)
        return 2

    notices: list[str] = []
    if "postgresql" in databases and (why := postgresql_unreachable(pg_admin_url)):
        notices.append(f"PostgreSQL skipped: {pg_admin_url} is unreachable ({why})")
        databases = [d for d in databases if d != "postgresql"]
        say(notices[-1])

    everything = "list,intake,imports,routing,health,checkin_page,ocr,alerts,insights,indicators"
    benches = set(_env_list("SALESLOOP_BENCH_ONLY", everything))
    started = dt.datetime.now(dt.UTC)
    load_before = os.getloadavg()[0]
    rows: list[Row] = []
    for kind in databases if "list" in benches else []:
        for leads in sizes:
            with tempfile.TemporaryDirectory(prefix="salesloop-bench-") as tmp:
                var_dir = Path(tmp)
                if kind == "sqlite":
                    database = sqlite_database(var_dir)
                else:
                    database = postgresql_database(pg_admin_url, var_dir, pg_settings)
                try:
                    rows += run_one(database, leads, requests, explain)
                finally:
                    if kind == "postgresql" and not os.environ.get("SALESLOOP_BENCH_KEEP"):
                        postgresql_drop(pg_admin_url)

    header = [
        f"salesloop bench — {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {started:%Y-%m-%d %H:%M} UTC; "
        # Other work on the machine skews every figure: say how busy it was.
        f"load average {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end",
        "seed: `salesloop seed --leads N`, whole run (migrated empty database → N leads with customers, "
        "contacts, stage histories)",
        f"lead list: GET /api/v1/leads?limit={PAGE_SIZE} over HTTP to `salesloop serve`, "
        f"one keep-alive client, {WARMUP} warm-up + {requests} requests per case; p50 / p95 in ms",
        f"target: p95 ≤ {TARGET_P95_MS:.0f} ms with a filter "
        f"({', '.join(CASE_TITLES[c] for c in FILTER_CASES)}) at {TARGET_LEADS:,} leads",
        *([f"PostgreSQL settings tried: {pg_settings}"] if pg_settings and "postgresql" in databases else []),
        *notices,
    ]
    print(table(rows, header) if rows else "\n".join([*header, "(nothing ran)"]))
    extra: dict[str, list[dict]] = {}
    if "intake" in benches:
        from bench import intake_webhooks

        say("intake: webhooks over HTTP …")
        extra["intake_webhooks"] = intake_webhooks.run(databases)
        # and again on a book of leads already there, where a statement reading a whole table shows
        book = int(os.environ.get("SALESLOOP_BENCH_INTAKE_SEED", "100000"))
        if book:
            say(f"intake: webhooks over HTTP, {book:,} leads seeded first …")
            extra["intake_webhooks"] += intake_webhooks.run(databases, seed_leads=book)
        print()
        print(
            "intake: signed webhooks over HTTP to `salesloop serve`, 32 concurrent clients, 20% known people"
        )
        print(intake_webhooks.table(extra["intake_webhooks"]))
        from bench import intake_batch

        say("intake: a webhook batch's CPU in one process …")
        extra["intake_batch"] = intake_batch.run(databases)
        print()
        print("intake: batches of 10 deliveries in one process, no HTTP (the write turn's CPU, steadier)")
        print(intake_batch.table(extra["intake_batch"]))
    if "imports" in benches:
        from bench import imports

        say("imports: CSV import …")
        extra["imports"] = imports.run(databases, sizes)
        print()
        print(
            "import: CSV with 20% duplicates, dedup and assignment, vs a plain bulk insert of the same rows"
        )
        print(imports.table(extra["imports"]))
    # The benches that print a table of their own (module, what it measures), in this order; each
    # module has `run(databases)`, `TITLE` and `table(rows)`.
    for name, measuring in [
        ("routing", "decisions and replay"),
        ("health", "full recompute and one lead on a new fact"),
        ("insights", "funnel heat map against DuckDB"),
        ("checkin_page", "time to interactive on a slow connection"),
        ("ocr", "evidence images per minute"),
        ("alerts", "raising, the robots' outbox, the alerts list"),
        ("indicators", "one scope and one period, live, vs DuckDB"),
    ]:
        if name not in benches:
            continue
        module = importlib.import_module(f"bench.{name}")
        say(f"{name}: {measuring} …")
        extra[name] = module.run() if name == "ocr" else module.run(databases)  # OCR needs no database
        print()
        print(module.TITLE)
        print(module.table(extra[name]))

    results = PROJECT_DIR / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    report = {
        "started": started.isoformat(),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_start": load_before,
            "load_average_end": os.getloadavg()[0],
        },
        "config": {
            "sizes": sizes,
            "databases": databases,
            "requests": requests,
            "warmup": WARMUP,
            "seed": SEED,
        },
        "target": {"p95_ms": TARGET_P95_MS, "leads": TARGET_LEADS, "cases": list(FILTER_CASES)},
        "notices": notices,
        "rows": [{**asdict(row), "verdict": row.verdict} for row in rows],
        **extra,
    }
    path = results / f"bench-{started:%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    say(f"results written to {path.relative_to(PROJECT_DIR)}")
    return 0
