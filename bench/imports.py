"""Benchmark of bulk lead import (SPEC C1.5): `python -m bench.imports [--sizes 100000,1000000]
[--databases sqlite,postgresql]` prints a table; `run(databases, sizes)` returns its rows.

For each size a CSV is generated the way Chinese lead lists look: Chinese names, real mobile
prefixes (so province and city are derived from the number), 20% of the rows repeating the phone
of an earlier row (the same person arriving twice), a share of numbers written with +86, spaces
and dashes, 1% unusable numbers, companies that recur. Each database gets a fresh database and
runs `salesloop import FILE` in a subprocess (SALESLOOP_DATABASE_URL, SALESLOOP_VAR_DIR) — the
whole command: reading and checking the file, dedup against the file and the database, writing
customers, contacts, leads, first moves, touch events and rejects.

The yardstick, measured in the same run on a fresh database of the same kind: a plain Django
`bulk_create` of the same rows as Contact records (one table, no dedup, no logic, conflicts
ignored). `ratio` = import rows/s ÷ plain rows/s: above 1 means the import, with all its work,
is faster than the simplest ORM insert of one table. Target (the issue): 1,000,000 rows ≤ 90 s.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
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


def _prepared(kind: str, var_dir: Path) -> dict[str, str]:
    env = _env(_fresh_database(kind, var_dir), var_dir)
    _run(env, "-m", "salesloop.cli", "migrate", "-v0")
    return env


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


def run(databases: list[str], sizes: list[int]) -> list[dict[str, Any]]:
    """One row per database × size: import rate, plain-insert rate, their ratio, the counts."""
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="salesloop-bench-import-") as tmp:
        var_dir = Path(tmp)
        for size in sizes:
            data = var_dir / f"leads-{size}.csv"
            csv_generate(data, size)
            for kind in databases:
                try:
                    env = _prepared(kind, var_dir)
                    plain = json.loads(_run(env, "-m", "bench.imports", "--plain-insert", str(data)))
                    env = _prepared(kind, var_dir)
                    began = time.monotonic()
                    out = _run(env, "-m", "salesloop.cli", "import", str(data), "--json")
                    wall = time.monotonic() - began
                    imported = json.loads(out.strip().splitlines()[-1])
                finally:
                    if kind == "postgresql":
                        _pg_drop()
                rate = imported["rows"] / imported["seconds"]
                results.append(
                    {
                        "bench": "import",
                        "db": kind,
                        "rows": size,
                        "seconds": imported["seconds"],
                        "wall_seconds": round(wall, 2),
                        "rows_per_s": round(rate),
                        "plain_insert_rows_per_s": plain["rows_per_s"],
                        "ratio": round(rate / plain["rows_per_s"], 2),
                        "created": imported["created"],
                        "duplicates_in_file": imported["duplicates_in_file"],
                        "touches": imported["touches"],
                        "rejected": imported["rejected"],
                        "target_met": (size < TARGET_ROWS)
                        or imported["seconds"] * TARGET_ROWS / size <= TARGET_SECONDS,
                    }
                )
    return results


def table(rows: list[dict[str, Any]]) -> str:
    columns = [
        ("db", "database"),
        ("rows", "rows"),
        ("seconds", "import s"),
        ("wall_seconds", "wall s"),
        ("rows_per_s", "rows/s"),
        ("plain_insert_rows_per_s", "plain rows/s"),
        ("ratio", "ratio"),
        ("created", "new"),
        ("duplicates_in_file", "dup in file"),
        ("rejected", "rejected"),
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
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--plain-insert", metavar="FILE", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.plain_insert:
        print(json.dumps(plain_insert(Path(options.plain_insert))))
        return 0
    sizes = [int(size.replace("_", "")) for size in options.sizes.split(",") if size]
    databases = [db.strip() for db in options.databases.split(",") if db.strip()]
    print(table(run(databases, sizes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
