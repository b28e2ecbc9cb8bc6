"""Alert benchmarks (issue 7 item 4; SPEC C9): `make bench` runs `run(databases)` and prints
`table(rows)`; `python -m bench.alerts [--databases sqlite,postgresql] [--alerts N] [--runs R]`
does the same alone.

For each database (fresh: SQLite in a temporary directory; PostgreSQL
`SALESLOOP_BENCH_ALERTS_PG_DATABASE`, default `salesloop_bench_alerts`, dropped afterwards):
migrate, then a history of N alerts (default 100,000; 6 regions, one recipient and one sent
delivery each, 1% still open) written set-based, and two robots per region pointing at a local
fake robot (a threading HTTP server in the measuring process, answering errcode 0 at once).

(a) **raise** — `alert_state_set` for 500 new keys (2 recipients, 2 robots each: the alert, its
recipients, 2 notifications, 2 outbox rows); p50 / p95 per call;
(b) **repeat** — the same 500 keys evaluated again while open (nothing to do); p50 / p95;
(c) **clear** — the 500 keys cleared in one `alerts_clear`;
(d) **outbox** — the 1,000 queued messages delivered by 1 worker, then 1,000 more by 4 worker
threads (claim + HTTP POST + record); messages per second;
(e) **list** — `GET /api/v1/alerts` (Django test client, session) as a region's manager, as a rep
and as the director, first page and a deep keyset page (`before` = the 20th page's cursor);
p50 / p95 over 50 requests after 5 warm-ups.
Medians over --runs runs (a fresh history each run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.databases import (
    DEFAULT_PG_ADMIN_URL,
    inner_run,
    postgresql_database,
    postgresql_drop,
    postgresql_unreachable,
    salesloop,
    sqlite_database,
)

TITLE = "alerts: raising, repeat evaluations, clearing, robot outbox throughput, the alerts list"
NEW_KEYS = 500
REQUESTS = 50
WARMUP = 5
DEEP_PAGE = 20
NOW = "2026-11-30T02:00:00+00:00"
NOW_ENV = {"SALESLOOP_FAKE_NOW": NOW}
REGIONS = 6


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ---- inside the measuring process -----------------------------------------------------------------


def _robot() -> tuple[Any, int]:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = b'{"errcode":0,"errmsg":"ok"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def measure(alerts_n: int) -> dict[str, Any]:
    server, port = _robot()
    os.environ["SALESLOOP_BOT_EXTRA_HOSTS"] = f"127.0.0.1:{port}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesloop.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection, connections, transaction
    from django.test import Client

    from salesloop.accounts.models import Region, User
    from salesloop.accounts.services import user_create
    from salesloop.core import clock
    from salesloop.notify.alerts import alert_state_set, alerts_clear
    from salesloop.notify.channels import channel_create
    from salesloop.notify.models import Alert, BotChannel, BotDelivery
    from salesloop.notify.outbox import deliveries_claim, deliveries_deliver, delivery_send

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}  # no kick
    settings.ALLOWED_HOSTS = ["*"]
    now = clock.now()

    # -- the organisation and its history
    regions = [
        Region.objects.get_or_create(code=f"b{i}", defaults={"name": f"区域{i}"})[0] for i in range(REGIONS)
    ]
    admin = User.objects.filter(username="bench_admin").first() or user_create(
        actor=None, username="bench_admin", password="x" * 12, role="admin"
    )
    managers = [
        User.objects.filter(username=f"bench_mgr{i}").first()
        or user_create(actor=None, username=f"bench_mgr{i}", password="x" * 12, role="manager", region=r)
        for i, r in enumerate(regions)
    ]
    reps = [
        User.objects.filter(username=f"bench_rep{i}").first()
        or user_create(actor=None, username=f"bench_rep{i}", password="x" * 12, role="rep", region=r)
        for i, r in enumerate(regions)
    ]
    director = User.objects.filter(username="bench_director").first() or user_create(
        actor=None, username="bench_director", password="x" * 12, role="director"
    )
    BotDelivery.objects.all().delete()
    Alert.objects.all().delete()
    BotChannel.objects.all().delete()
    channels = []
    for i, region in enumerate(regions):
        for kind in ("wecom", "dingtalk"):
            path = "/cgi-bin/webhook/send?key=k" if kind == "wecom" else "/robot/send?access_token=t"
            channels.append(
                channel_create(
                    actor=admin,
                    kind=kind,
                    name=f"{kind}{i}",
                    webhook_url=f"http://127.0.0.1:{port}{path}",
                    secret="SECbench" if kind == "dingtalk" else "",
                    region_id=region.pk,
                )
            )
    started = time.perf_counter()
    batch = 20_000
    for lo in range(0, alerts_n, batch):
        rows = [
            Alert(
                kind="health.red",
                key=f"history:{n}",
                region=regions[n % REGIONS],
                title=f"历史预警 {n}",
                body="",
                explanation={"summary": "历史"},
                link=f"/leads/{n}/",
                raised_at=now,
                cleared_at=None if n % 100 == 0 else now,
            )
            for n in range(lo, min(lo + batch, alerts_n))
        ]
        with transaction.atomic():
            made = Alert.objects.bulk_create(rows, batch_size=5000)
            if connection.vendor == "sqlite" or made[0].pk is None:
                made = list(Alert.objects.filter(key__in=[a.key for a in rows]).only("id", "region_id"))
            through = Alert.recipients.through
            by_region = {r.pk: i for i, r in enumerate(regions)}
            through.objects.bulk_create(
                [through(alert_id=a.pk, user_id=reps[by_region[a.region_id]].pk) for a in made],
                batch_size=5000,
            )
            BotDelivery.objects.bulk_create(
                [
                    BotDelivery(
                        alert_id=a.pk,
                        channel=channels[2 * by_region[a.region_id]],
                        status="sent",
                        message={"title": "t", "text": "t"},
                        attempts=1,
                        sent_at=now,
                    )
                    for a in made
                ],
                batch_size=5000,
            )
    history_s = time.perf_counter() - started
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    # (a) raise, (b) repeat, (c) clear
    def evaluate(n: int) -> Any:
        region = regions[n % REGIONS]
        return alert_state_set(
            key=f"bench:{n}",
            active=True,
            kind="indicator.conversion",
            title=f"区域{n % REGIONS} 转化率预警 {n}",
            body="本周线索转化率低于阈值。",
            explanation={"summary": "转化率 8% < 阈值 12%", "value": 0.08},
            link="/insights/funnel/",
            suggested_response="复盘渠道质量。",
            region=region,
            recipients=[managers[n % REGIONS], reps[n % REGIONS]],
        )

    raise_ms, repeat_ms = [], []
    for n in range(NEW_KEYS):
        t = time.perf_counter()
        assert evaluate(n) is not None
        raise_ms.append((time.perf_counter() - t) * 1000)
    for n in range(NEW_KEYS):
        t = time.perf_counter()
        assert evaluate(n) is None
        repeat_ms.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    cleared = alerts_clear(keys=[f"bench:{n}" for n in range(NEW_KEYS)])
    clear_ms = (time.perf_counter() - t) * 1000
    assert cleared == NEW_KEYS

    # (d) the outbox: 1,000 queued messages by one worker
    t = time.perf_counter()
    sent_one = 0
    while (run := deliveries_deliver(limit=100)).claimed:
        sent_one += run.sent
    one_worker_s = time.perf_counter() - t
    # … and 1,000 more (a second entry of every key) by four threads
    for n in range(NEW_KEYS):
        evaluate(n)
    sent_four: list[int] = []

    def worker() -> None:
        count = 0
        try:
            while ids := deliveries_claim(limit=25):
                for delivery_id in ids:
                    count += delivery_send(delivery_id=delivery_id) == "sent"
        finally:
            sent_four.append(count)
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    t = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    four_workers_s = time.perf_counter() - t
    assert sent_one == 2 * NEW_KEYS and sum(sent_four) == 2 * NEW_KEYS, (sent_one, sent_four)

    # (e) the list
    lists: dict[str, dict[str, float]] = {}
    for label, user in (("manager", managers[0]), ("rep", reps[0]), ("director", director)):
        client = Client()
        client.force_login(user)
        cursor = None
        for _ in range(DEEP_PAGE):
            page = client.get("/api/v1/alerts").json() if cursor is None else None
            page = page or client.get("/api/v1/alerts", {"before": cursor}).json()
            cursor = page["next_before"]
            if cursor is None:
                break
        for case, params in (("first", {}), ("deep", {"before": cursor} if cursor else {})):
            samples = []
            for i in range(WARMUP + REQUESTS):
                t = time.perf_counter()
                answer = client.get("/api/v1/alerts", params)
                elapsed = (time.perf_counter() - t) * 1000
                assert answer.status_code == 200
                if i >= WARMUP:
                    samples.append(elapsed)
            lists[f"{label}_{case}"] = {"p50": statistics.median(samples), "p95": _pct(samples, 0.95)}
    server.shutdown()
    return {
        "alerts": Alert.objects.count(),
        "history_s": history_s,
        "raise_p50_ms": statistics.median(raise_ms),
        "raise_p95_ms": _pct(raise_ms, 0.95),
        "repeat_p50_ms": statistics.median(repeat_ms),
        "repeat_p95_ms": _pct(repeat_ms, 0.95),
        "clear_ms": clear_ms,
        "one_worker_per_s": 2 * NEW_KEYS / one_worker_s,
        "four_workers_per_s": 2 * NEW_KEYS / four_workers_s,
        "lists": lists,
    }


# ---- the driver ----------------------------------------------------------------------------------


def _pg_name() -> str:
    return os.environ.get("SALESLOOP_BENCH_ALERTS_PG_DATABASE", "salesloop_bench_alerts")


def run(databases: list[str], alerts_n: int | None = None, runs: int | None = None) -> list[dict[str, Any]]:
    alerts_n = alerts_n or int(os.environ.get("SALESLOOP_BENCH_ALERTS", "100000"))
    runs = runs or int(os.environ.get("SALESLOOP_BENCH_ALERTS_RUNS", "3"))
    admin_url = os.environ.get("SALESLOOP_BENCH_PG_URL", DEFAULT_PG_ADMIN_URL)
    rows = []
    for kind in databases:
        if kind == "postgresql" and (why := postgresql_unreachable(admin_url)):
            say(f"alerts: PostgreSQL skipped ({why})")
            continue
        with tempfile.TemporaryDirectory(prefix="salesloop-bench-alerts-") as tmp:
            database = (
                sqlite_database(Path(tmp))
                if kind == "sqlite"
                else postgresql_database(admin_url, Path(tmp), name=_pg_name())
            )
            try:
                salesloop(database, "migrate", "--verbosity", "0")
                results = []
                for n in range(runs):
                    results.append(
                        inner_run(database, "bench.alerts", "--inner", "--alerts", str(alerts_n), env=NOW_ENV)
                    )
                    figures = json.dumps(results[-1], ensure_ascii=False)
                    say(f"[alerts {database.label}] run {n + 1}: {figures}")
                rows.append(_row(database.label, results))
            finally:
                if kind == "postgresql" and not os.environ.get("SALESLOOP_BENCH_KEEP"):
                    postgresql_drop(admin_url, name=_pg_name())
    return rows


def _row(label: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    median = statistics.median
    row: dict[str, Any] = {"database": label, "runs": len(results), "alerts": results[-1]["alerts"]}
    for key in results[0]:
        if key not in ("alerts", "lists"):
            row[key] = median(r[key] for r in results)
    row["lists"] = {
        case: {q: median(r["lists"][case][q] for r in results) for q in ("p50", "p95")}
        for case in results[0]["lists"]
    }
    return row


def table(rows: list[dict[str, Any]]) -> str:
    columns = [
        "database",
        "alerts",
        "raise p50/p95",
        "repeat p50/p95",
        f"clear {NEW_KEYS}",
        "outbox 1 / 4 workers",
    ]
    body = [
        [
            row["database"],
            f"{row['alerts']:,}",
            f"{row['raise_p50_ms']:.2f} / {row['raise_p95_ms']:.2f} ms",
            f"{row['repeat_p50_ms']:.2f} / {row['repeat_p95_ms']:.2f} ms",
            f"{row['clear_ms']:.1f} ms",
            f"{row['one_worker_per_s']:.0f} / {row['four_workers_per_s']:.0f} msg/s",
        ]
        for row in rows
    ]
    list_columns = [
        "database",
        *[f"{who} {case}" for who in ("manager", "rep", "director") for case in ("first", "deep")],
    ]
    list_body = [
        [
            row["database"],
            *[
                f"{row['lists'][f'{who}_{case}']['p50']:.1f}/{row['lists'][f'{who}_{case}']['p95']:.1f}"
                for who in ("manager", "rep", "director")
                for case in ("first", "deep")
            ],
        ]
        for row in rows
    ]

    def render(cols: list[str], lines: list[list[str]]) -> list[str]:
        widths = [max(len(cols[i]), *(len(line[i]) for line in lines)) for i in range(len(cols))]

        def one(cells: list[str]) -> str:
            return "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(cells)).rstrip()

        rule = "-" * len(one(cols))
        return [rule, one(cols), rule, *(one(cells) for cells in lines), rule]

    notes = [
        f"medians of {rows[0]['runs'] if rows else 0} runs; raise/repeat: per alert_state_set call "
        f"({NEW_KEYS} keys, 2 recipients, 2 robots); outbox: local fake robot, claim + POST + record",
        f"GET /api/v1/alerts p50/p95 ms ({REQUESTS} requests; deep = page {DEEP_PAGE} by keyset):",
    ]
    return "\n".join([notes[0], *render(columns, body), notes[1], *render(list_columns, list_body)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--alerts", type=int, default=None)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    if args.inner:
        print(json.dumps(measure(args.alerts or 100_000)))
        return 0
    load = os.getloadavg()[0]
    rows = run(args.databases.split(","), args.alerts, args.runs)
    print(
        f"{TITLE} — {os.cpu_count()} cores; load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
