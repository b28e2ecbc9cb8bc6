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
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DATABASE = os.environ.get("SALESLOOP_BENCH_BATCH_DB", "salesloop_bench_batch")
BATCH = 10  # deliveries per batch: what the HTTP bench's batches hold at 300/s
WARMUP_BATCHES = 5

_ONE_RUN = """
import gc, json, sys, time
import django
django.setup()
from bench.intake_webhooks import bench_setup, _payloads
from salesloop.intake.burst import Delivery, deliveries_read, deliveries_receive
from salesloop.intake.models import Source

batches, batch, warmup = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
source = Source.objects.get(slug=bench_setup(routing=True)["slug"])
bodies = _payloads(batches * batch, 7)
spent = {"read": 0.0, "turn": 0.0, "wall": 0.0}
for number in range(batches):
    part = bodies[number * batch : (number + 1) * batch]
    deliveries = [
        Delivery(source=source, body=b.decode(), external_id=json.loads(b)["id"], remote_addr="127.0.0.1")
        for b in part
    ]
    if number == warmup:
        gc.freeze()  # as the web processes do once loaded (core/gunicorn_hooks.py)
        spent = {"read": 0.0, "turn": 0.0, "wall": 0.0}
    began, wall = time.process_time(), time.perf_counter()
    deliveries_read(deliveries)
    read = time.process_time()
    deliveries_receive(deliveries)
    spent["read"] += read - began
    spent["turn"] += time.process_time() - read
    spent["wall"] += time.perf_counter() - wall
print(json.dumps({k: 1000 * v / ((batches - warmup) * batch) for k, v in spent.items()}))
"""


def _database(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'batch.sqlite3'}"
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(PG_DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PG_DATABASE)))
    return f"postgresql://postgres@127.0.0.1:5432/{PG_DATABASE}"


def run_one(kind: str, batches: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="salesloop-batch-bench-") as tmp:
        workdir = Path(tmp)
        env = {
            **os.environ,
            "SALESLOOP_DATABASE_URL": _database(kind, workdir),
            "SALESLOOP_VAR_DIR": str(workdir / "var"),
            "DJANGO_SETTINGS_MODULE": "salesloop.settings",
            "SALESLOOP_LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join([str(PROJECT_DIR / "src"), str(PROJECT_DIR)]),
        }
        env.pop("SALESLOOP_TESTING", None)
        try:
            for args in (
                ["-m", "salesloop.cli", "migrate", "-v0"],
                ["-c", _ONE_RUN, str(batches), str(BATCH), str(WARMUP_BATCHES)],
            ):
                done = subprocess.run(
                    [sys.executable, *args],
                    env=env,
                    cwd=PROJECT_DIR,
                    capture_output=True,
                    text=True,
                    timeout=900,
                    check=False,
                )
                if done.returncode != 0:
                    raise RuntimeError(f"{args[:2]} failed: {done.stderr[-2000:]}")
            return json.loads(done.stdout.strip().splitlines()[-1])
        finally:
            if kind == "postgresql":
                import psycopg
                from psycopg import sql

                with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(PG_DATABASE))
                    )


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
    args = parser.parse_args()
    rows = run([d.strip() for d in args.databases.split(",") if d.strip()], args.batches, args.repeat)
    print(json.dumps(rows) if args.json else table(rows))


if __name__ == "__main__":
    main()
