"""A webhook batch's CPU in one process, without HTTP (issue: intake benchmark).

`bench.intake_webhooks` measures intake as a sender sees it, over HTTP against `salesloop serve`;
on a shared two-core machine its figures move by ±10% from one run to the next, which hides a
change of a few percent. This measures the part that decides the tail there — a batch's write
turn, which the web processes take one at a time (intake/coalesce.py, core/sqlite) — in one
process with nothing else running: the same setup as the HTTP bench (the demo organisation, a
region round-robin rule set in force, a signed-API source), then `deliveries_receive` on batches
of BATCH deliveries, 20% of them people already known, each batch's payloads read first
(`deliveries_read`, as each request's own thread does before it queues).

Printed per database: CPU time per delivery reading (outside the turn) and in the batch's
transaction (the turn), and the wall time per delivery (on PostgreSQL, the server's time too).

    python -m bench.intake_batch [--databases sqlite,postgresql] [--batches 300] [--repeat 3]

SALESLOOP_BENCH_PG_URL names the PostgreSQL server (as for `make bench`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.databases import (
    DEFAULT_PG_ADMIN_URL,
    BenchDatabase,
    inner_run,
    postgresql_database,
    postgresql_drop,
    salesloop,
    sqlite_database,
)

PG_ADMIN_URL = os.environ.get("SALESLOOP_BENCH_PG_URL", DEFAULT_PG_ADMIN_URL)
PG_DATABASE = "salesloop_bench_batch"
BATCH = 10  # deliveries per batch: what the HTTP bench's batches hold at 300/s
WARMUP_BATCHES = 5


def measure(batches: int) -> dict[str, float]:
    """In this process, on its database (migrated): CPU and wall milliseconds per delivery."""
    import gc
    import time

    import django

    django.setup()
    from bench.intake_webhooks import _payloads, bench_setup
    from salesloop.intake.burst import Delivery, deliveries_read, deliveries_receive
    from salesloop.intake.models import Source

    source = Source.objects.get(slug=bench_setup(routing=True)["slug"])
    bodies = _payloads(batches * BATCH, 7)
    spent = {"read": 0.0, "turn": 0.0, "wall": 0.0}
    for number in range(batches):
        deliveries = [
            Delivery(source=source, body=b.decode(), external_id=json.loads(b)["id"], remote_addr="127.0.0.1")
            for b in bodies[number * BATCH : (number + 1) * BATCH]
        ]
        if number == WARMUP_BATCHES:
            gc.freeze()  # as the web processes do once loaded (core/gunicorn_hooks.py)
            spent = dict.fromkeys(spent, 0.0)
        began, wall = time.process_time(), time.perf_counter()
        deliveries_read(deliveries)
        read = time.process_time()
        deliveries_receive(deliveries)
        spent["read"] += read - began
        spent["turn"] += time.process_time() - read
        spent["wall"] += time.perf_counter() - wall
    return {key: 1000 * value / ((batches - WARMUP_BATCHES) * BATCH) for key, value in spent.items()}


def run_one(kind: str, batches: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="salesloop-batch-bench-") as tmp:
        var_dir = Path(tmp)
        database: BenchDatabase = (
            sqlite_database(var_dir)
            if kind == "sqlite"
            else postgresql_database(PG_ADMIN_URL, var_dir, name=PG_DATABASE)
        )
        try:
            salesloop(database, "migrate", "-v0")
            return inner_run(database, "bench.intake_batch", "--inner", str(batches))
        finally:
            if kind == "postgresql":
                postgresql_drop(PG_ADMIN_URL, name=PG_DATABASE)


def run(databases: list[str], batches: int = 300, repeat: int = 3) -> list[dict[str, Any]]:
    rows = []
    for kind in databases:
        runs = [run_one(kind, batches) for _ in range(repeat)]
        rows.append(
            {
                "bench": "intake-batch",
                "db": kind,
                "deliveries": (batches - WARMUP_BATCHES) * BATCH,
                "batch": BATCH,
                "runs": runs,
                **{
                    key: round(statistics.median(r[key] for r in runs), 3) for key in ("read", "turn", "wall")
                },
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{'db':<12}{'deliveries':>11}{'batch':>6}{'read cpu ms':>12}{'turn cpu ms':>12}{'wall ms':>9}"
        "  (per delivery, median of runs)"
    ]
    for r in rows:
        lines.append(
            f"{r['db']:<12}{r['deliveries']:>11}{r['batch']:>6}{r['read']:>12.3f}{r['turn']:>12.3f}{r['wall']:>9.3f}"
            "  runs (turn): " + ", ".join(f"{run['turn']:.3f}" for run in r["runs"])
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--inner", type=int, help=argparse.SUPPRESS)  # one measurement, here
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(measure(args.inner)))
        return
    rows = run([d.strip() for d in args.databases.split(",") if d.strip()], args.batches, args.repeat)
    print(json.dumps(rows) if args.json else table(rows))


if __name__ == "__main__":
    main()
