"""Benchmark of bulk lead import (SPEC C1.5): `python -m bench.imports [--sizes 100000,1000000]
[--databases sqlite,postgresql] [--repeat 3] [--no-assignment] [--json]` prints a table;
`run(databases, sizes)` returns its rows.

For each size a CSV is generated the way Chinese lead lists look: Chinese names, real mobile
prefixes (so province and city are derived from the number), 20% of the rows repeating the phone
of an earlier row (the same person arriving twice), a share of numbers written with +86, spaces
and dashes, 1% unusable numbers, companies that recur. Each database gets a fresh database and
runs `salesloop import FILE` in a subprocess (SALESLOOP_DATABASE_URL, SALESLOOP_VAR_DIR) — the
whole command: reading and checking the file, dedup against the file and the database, writing
customers, contacts, leads, first moves, touch events and rejects, and routing every new lead.

With assignment, as a live system imports: before the import the database gets the demo
organisation (four regions, four reps each) and a region round-robin rule set in force (one rule
per region, a fallback over all of them; see `routing_definition`), so every lead the import
creates is routed in its chunk's transaction, with its trace (routing.services.leads_route_bulk).
The table says whether assignment ran, how many leads were routed and how many got an owner, and
how much of the import's time routing took (`route s`, and per 10,000 rows of the file). The
import's own phases (waiting for the reader process, plan, write, route, commit) are in each
row's `phases`.

The yardstick, measured in the same run on a fresh database of the same kind: a plain Django
`bulk_create` of the same rows as Contact records (one table, no dedup, no logic, conflicts
ignored). `ratio` = import rows/s ÷ plain rows/s: above 1 means the import, with all its work,
is faster than the simplest ORM insert of one table. Target (the issue): 1,000,000 rows ≤ 90 s,
PASS or FAIL on a file of a million rows or more (a smaller one shows the projection only).

The machine may be shared: with `--repeat N` every figure is the median of N runs, and each row
carries the load average (1 min) before and after each import, and the CPU time of the import's
processes (the command and its reader process; PostgreSQL's server is not counted) — which moves
less with the load than the wall time does. `--no-assignment` measures the import alone (no rule
set in force, so new leads wait in their pool), as main did before every lead was routed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

PROJECT_DIR = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("SALESLOOP_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_DATABASE = "salesloop_bench_import"
TARGET_ROWS, TARGET_SECONDS = 1_000_000, 90.0
DUPLICATE_SHARE = 0.20
INVALID_SHARE = 0.01
SEED = 20261128

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜"
    "崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国志飞晨宇浩然子涵欣怡梓轩"
    "雨桐佳琪思远文博嘉怡俊杰"
)
CITIES = [
    "杭州",
    "上海",
    "苏州",
    "南京",
    "宁波",
    "广州",
    "深圳",
    "佛山",
    "北京",
    "天津",
    "成都",
    "武汉",
    "沈阳",
    "大连",
    "青岛",
]
WORDS = [
    "星河",
    "远景",
    "华创",
    "恒泰",
    "博远",
    "鼎盛",
    "云帆",
    "正和",
    "天成",
    "瑞丰",
    "启明",
    "智联",
    "宏达",
    "中科",
    "新锐",
]
INDUSTRIES = ["新能源", "智能制造", "医疗器械", "软件", "物流", "教育", "化工", "零售", "汽车零部件", "建材"]
TITLES = ["采购经理", "总经理", "技术总监", "IT负责人", "财务总监", "运营经理", "工程师", ""]
PROVINCES = ["", "", "浙江", "上海", "江苏", "广东", "北京", "四川省", "湖北省", "辽宁省"]
ORIGINS = ["抖音", "官网", "展会", "百度推广", "老客转介"]
# Heads of consumer mobile ranges that phonenumbers accepts (as the demo generator uses).
MOBILE_HEADS = [
    *range(130, 140),
    150,
    151,
    152,
    153,
    155,
    156,
    157,
    158,
    159,
    *range(180, 190),
    166,
    173,
    175,
    176,
    177,
    178,
    198,
    199,
]
HEADERS = ["姓名", "手机号", "公司名称", "职位", "省份", "城市", "行业", "需求", "来源", "活动", "预计金额"]


def csv_generate(path: Path, rows: int, seed: int = SEED) -> None:
    rng = random.Random(seed)
    companies = [
        f"{rng.choice(CITIES)}{rng.choice(WORDS)}{rng.choice(INDUSTRIES)}{'科技' if i % 3 else ''}有限公司{i}"
        for i in range(max(rows // 4, 10))
    ]
    phones: list[str] = []
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        for i in range(rows):
            draw = rng.random()
            if phones and draw < DUPLICATE_SHARE:
                national = rng.choice(phones)
            elif draw < DUPLICATE_SHARE + INVALID_SHARE:
                national = str(rng.randrange(10_000, 99_999_999))  # too short to be anyone
            else:
                national = f"{rng.choice(MOBILE_HEADS)}{rng.randrange(100_000_000):08d}"
                phones.append(national)
            style = i % 10
            if style == 7:
                written = f"+86 {national[:3]} {national[3:7]} {national[7:]}"
            elif style == 8:
                written = f"{national[:3]}-{national[3:7]}-{national[7:]}"
            else:
                written = national
            writer.writerow(
                [
                    rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if i % 2 else ""),
                    written,
                    rng.choice(companies),
                    rng.choice(TITLES),
                    rng.choice(PROVINCES),
                    "",
                    rng.choice(INDUSTRIES),
                    "想了解报价和交付周期" if i % 5 == 0 else "",
                    rng.choice(ORIGINS),
                    "2026春季投放" if i % 3 == 0 else "",
                    str(rng.randrange(0, 500) * 1000) if i % 4 == 0 else "",
                ]
            )


# ---- databases ------------------------------------------------------------------------------


def _pg_url(name: str) -> str:
    parts = urlsplit(PG_ADMIN_URL)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def _pg_recreate() -> str:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(PG_DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PG_DATABASE)))
    return _pg_url(PG_DATABASE)


def _pg_drop() -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(PG_DATABASE)))


def _fresh_database(kind: str, var_dir: Path) -> str:
    if kind == "sqlite":
        path = var_dir / "bench-import.sqlite3"
        for leftover in var_dir.glob("bench-import.sqlite3*"):
            leftover.unlink()
        return f"sqlite:///{path}"
    if kind == "postgresql":
        return _pg_recreate()
    raise ValueError(f"unknown database {kind!r} (sqlite or postgresql)")


def _env(url: str, var_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SALESLOOP_")}
    env.update(
        SALESLOOP_DATABASE_URL=url,
        SALESLOOP_VAR_DIR=str(var_dir),
        SALESLOOP_LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="salesloop.settings",
    )
    return env


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-4000:]}"
        )
    return done.stdout


def _prepared(
    kind: str, var_dir: Path, *, routing: bool = False, organisation: bool = False
) -> dict[str, str]:
    env = _env(_fresh_database(kind, var_dir), var_dir)
    _run(env, "-m", "salesloop.cli", "migrate", "-v0")
    if routing:
        _run(env, "-m", "bench.imports", "--routing-prepare")
    elif organisation:
        _run(env, "-m", "bench.imports", "--organisation-prepare")
    return env


# ---- assignment -----------------------------------------------------------------------------

IMPORTER = "director"


def routing_definition(region_codes: list[str]) -> dict[str, Any]:
    """A region round-robin, as an organisation starts with (SPEC C8.1): one rule per region
    handing its leads to that region's reps in turns, and a fallback taking turns over every
    region's reps for leads from provinces no region covers (四川, 湖北 … in the bench's file)."""
    return {
        "name": "按区域轮转",
        "rules": [
            {
                "id": f"region-{code}",
                "name": f"{code} 区域轮转",
                "priority": 10 * position,
                "when": {"regions": [code]},
                "pool": {"regions": [code]},
                "strategy": "round_robin",
            }
            for position, code in enumerate(region_codes, start=1)
        ],
        "fallback": {"pool": {"regions": region_codes}, "strategy": "round_robin"},
    }


def organisation_prepare() -> dict[str, Any]:
    """In a configured Django process: the demo organisation only, no rule set (--no-assignment)."""
    import django

    django.setup()
    from salesloop.demo.org import demo_org_ensure

    org = demo_org_ensure()
    return {"reps": sum(len(org.reps(code)) for code in org.regions)}


def routing_prepare() -> dict[str, Any]:
    """In a configured Django process: the demo organisation (four regions, four reps each, a
    director who imports) and a region round-robin rule set in force, as a live system would have
    when a campaign list is imported — so every imported lead is routed, with its trace.
    Published directly (effective a minute ago), as tests/routing/conftest.py does: the notice
    period and the sandbox are not what this measures."""
    import datetime as dt

    import django

    django.setup()
    from salesloop.core import clock
    from salesloop.demo.org import demo_org_ensure
    from salesloop.routing.models import RuleSet, RuleSetStatus
    from salesloop.routing.services import ruleset_create

    org = demo_org_ensure()
    codes = sorted(org.regions)
    ruleset = ruleset_create(actor=org.users[IMPORTER], definition=routing_definition(codes))
    since = clock.now() - dt.timedelta(minutes=1)
    RuleSet.objects.filter(pk=ruleset.pk).update(
        status=RuleSetStatus.PUBLISHED, effective_at=since, published_at=since
    )
    return {"ruleset": ruleset.pk, "reps": sum(len(org.reps(code)) for code in codes)}


def routing_outcome() -> dict[str, int]:
    """After the import: how many leads were routed (an assignment with its trace) and how many
    got an owner."""
    import django

    django.setup()
    from salesloop.crm.models import Lead
    from salesloop.routing.models import Assignment

    return {
        "leads": Lead.objects.count(),
        "routed": Assignment.objects.count(),
        "owned": Lead.objects.filter(owner__isnull=False).count(),
    }


# ---- the yardstick --------------------------------------------------------------------------


def plain_insert(path: Path) -> dict[str, Any]:
    """In a configured Django process: the rows of the file as Contact records through
    `bulk_create`, 5,000 at a time — the plain ORM insert an import without a bulk path would be
    built on, without any of its checks. Returns its rate."""
    import django

    django.setup()
    from salesloop.crm.models import Contact

    began = time.monotonic()
    count = 0
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle)
        next(rows)
        batch: list[Contact] = []
        for row in rows:
            digits = "".join(ch for ch in row[1] if ch.isdigit())[-11:]
            batch.append(Contact(name=row[0], title=row[3], phone=f"+86{digits}"))
            if len(batch) == 5_000:
                Contact.objects.bulk_create(batch, ignore_conflicts=True)
                count += len(batch)
                batch = []
        Contact.objects.bulk_create(batch, ignore_conflicts=True)
        count += len(batch)
    seconds = time.monotonic() - began
    return {"rows": count, "seconds": round(seconds, 3), "rows_per_s": round(count / seconds)}


# ---- the run --------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _import_once(kind: str, var_dir: Path, data: Path, *, assignment: bool) -> dict[str, Any]:
    """One import of `data` into a fresh database (with the demo organisation, and with a rule set
    in force if `assignment`): the command's JSON, the wall time, the CPU time of the import's
    processes (its reader process included) and the load average before and after."""
    try:
        env = _prepared(kind, var_dir, routing=assignment, organisation=True)
        load_before = os.getloadavg()[0]
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.monotonic()
        out = _run(env, "-m", "salesloop.cli", "import", str(data), "--json", "--user", IMPORTER)
        wall = time.monotonic() - began
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_after = os.getloadavg()[0]
        imported = json.loads(out.strip().splitlines()[-1])
        routing = json.loads(_run(env, "-m", "bench.imports", "--routing-outcome"))
    finally:
        if kind == "postgresql":
            _pg_drop()
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    phases = imported.get("phases", {})
    return {
        **imported,
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "load": (round(load_before, 2), round(load_after, 2)),
        "route_seconds": phases.get("route", 0.0),
        "routing": routing,
    }


def run(
    databases: list[str], sizes: list[int], *, repeat: int = 1, assignment: bool = True
) -> list[dict[str, Any]]:
    """One row per database × size: import rate, plain-insert rate, their ratio, the counts. With
    `repeat` > 1 each is measured that many times, alternating plain insert and import, and the
    row gives medians (the machine may be shared: the load averages are in the row too)."""
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="salesloop-bench-import-") as tmp:
        var_dir = Path(tmp)
        for size in sizes:
            data = var_dir / f"leads-{size}.csv"
            csv_generate(data, size)
            for kind in databases:
                plains: list[dict[str, Any]] = []
                imports: list[dict[str, Any]] = []
                for _ in range(max(repeat, 1)):
                    try:
                        env = _prepared(kind, var_dir)
                        plains.append(
                            json.loads(_run(env, "-m", "bench.imports", "--plain-insert", str(data)))
                        )
                    finally:
                        if kind == "postgresql":
                            _pg_drop()
                    imports.append(_import_once(kind, var_dir, data, assignment=assignment))
                results.append(_summary(kind, size, plains, imports, assignment=assignment))
    return results


def _summary(
    kind: str, size: int, plains: list[dict[str, Any]], imports: list[dict[str, Any]], *, assignment: bool
) -> dict[str, Any]:
    seconds = _median([run["seconds"] for run in imports])
    route = _median([run["route_seconds"] for run in imports])
    plain_rate = _median([run["rows_per_s"] for run in plains])
    rate = size / seconds if seconds else 0.0
    last = imports[-1]
    projected = seconds * TARGET_ROWS / size if size else 0.0
    return {
        "bench": "import",
        "db": kind,
        "rows": size,
        "runs": len(imports),
        "seconds": round(seconds, 2),
        "seconds_each": [run["seconds"] for run in imports],
        "wall_seconds": round(_median([run["wall_seconds"] for run in imports]), 2),
        "cpu_seconds": round(_median([run["cpu_seconds"] for run in imports]), 2),
        "rows_per_s": round(rate),
        "plain_insert_rows_per_s": round(plain_rate),
        "ratio": round(rate / plain_rate, 2) if plain_rate else None,
        "created": last["created"],
        "duplicates_in_file": last["duplicates_in_file"],
        "touches": last["touches"],
        "rejected": last["rejected"],
        "assignment": "yes" if assignment and last["routing"]["routed"] else "no",
        "routed": last["routing"]["routed"],
        "owned": last["routing"]["owned"],
        "phases": [run.get("phases", {}) for run in imports],
        "route_seconds": round(route, 2),
        "route_per_10k_rows": round(route * 10_000 / max(size, 1), 2),
        "without_route_seconds": round(
            _median([run["seconds"] - run["route_seconds"] for run in imports]), 2
        ),
        "load": [run["load"] for run in imports],
        "load_median": round(_median([value for run in imports for value in run["load"]]), 2),
        "projected_1m_seconds": round(projected, 1),
        # The target is for a million rows; a smaller file only gives a projection.
        "target": ("PASS" if projected <= TARGET_SECONDS else "FAIL") if size >= TARGET_ROWS else "n/a",
        "target_met": size < TARGET_ROWS or projected <= TARGET_SECONDS,
    }


def table(rows: list[dict[str, Any]]) -> str:
    columns = [
        ("db", "database"),
        ("rows", "rows"),
        ("runs", "runs"),
        ("seconds", "import s (median)"),
        ("rows_per_s", "rows/s"),
        ("plain_insert_rows_per_s", "plain rows/s"),
        ("ratio", "ratio"),
        ("target", "1M ≤ 90 s"),
        ("projected_1m_seconds", "s per 1M"),
        ("cpu_seconds", "import CPU s"),
        ("load_median", "load avg"),
        ("created", "new"),
        ("duplicates_in_file", "dup in file"),
        ("rejected", "rejected"),
        ("assignment", "assignment"),
        ("routed", "routed"),
        ("owned", "got an owner"),
        ("route_seconds", "route s"),
        ("route_per_10k_rows", "route s/10k rows"),
        ("without_route_seconds", "s without routing"),
    ]
    lines = [" | ".join(title for _, title in columns), " | ".join("---" for _ in columns)]
    for row in rows:
        lines.append(
            " | ".join(f"{row[key]:,}" if isinstance(row[key], int) else str(row[key]) for key, _ in columns)
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000", help="comma-separated row counts")
    parser.add_argument("--databases", default="sqlite,postgresql", help="sqlite, postgresql or both")
    parser.add_argument("--repeat", type=int, default=1, help="runs per database and size; medians are shown")
    parser.add_argument(
        "--no-assignment",
        action="store_true",
        help="no rule set in force: new leads wait in their pool (the import alone, as before routing)",
    )
    parser.add_argument(
        "--json", action="store_true", help="also print the rows as JSON (every run's phases)"
    )
    parser.add_argument("--plain-insert", metavar="FILE", help=argparse.SUPPRESS)
    parser.add_argument("--routing-prepare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--routing-outcome", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--organisation-prepare", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.plain_insert:
        print(json.dumps(plain_insert(Path(options.plain_insert))))
        return 0
    if options.routing_prepare:
        print(json.dumps(routing_prepare()))
        return 0
    if options.organisation_prepare:
        print(json.dumps(organisation_prepare()))
        return 0
    if options.routing_outcome:
        print(json.dumps(routing_outcome()))
        return 0
    sizes = [int(size.replace("_", "")) for size in options.sizes.split(",") if size]
    databases = [db.strip() for db in options.databases.split(",") if db.strip()]
    rows = run(databases, sizes, repeat=options.repeat, assignment=not options.no_assignment)
    print(table(rows))
    if options.json:
        print(json.dumps(rows, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
