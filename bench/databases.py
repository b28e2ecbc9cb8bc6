"""Fresh databases for one benchmark run, and the `salesloop` commands run against them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

PROJECT_DIR = Path(__file__).resolve().parent.parent
BENCH_DATABASE_NAME = "salesloop_bench"
DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class BenchDatabase:
    kind: str  # sqlite | postgresql
    url: str
    var_dir: Path

    @property
    def label(self) -> str:
        return {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[self.kind]

    def env(self) -> dict[str, str]:
        """The environment of every `salesloop` process of this run: this database, a private var
        dir (secret key, static files), production settings (no DEBUG)."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("SALESLOOP_")}
        env.update(
            SALESLOOP_DATABASE_URL=self.url,
            SALESLOOP_VAR_DIR=str(self.var_dir),
            SALESLOOP_LOG_LEVEL="WARNING",
            DJANGO_SETTINGS_MODULE="salesloop.settings",
        )
        return env


def sqlite_database(var_dir: Path) -> BenchDatabase:
    path = var_dir / "bench.sqlite3"
    for leftover in var_dir.glob("bench.sqlite3*"):
        leftover.unlink()
    return BenchDatabase("sqlite", f"sqlite:///{path}", var_dir)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def postgresql_unreachable(admin_url: str) -> str | None:
    """Why PostgreSQL cannot be used (None if it can)."""
    try:
        import psycopg
    except ImportError as exc:
        return f"psycopg is not installed ({exc})"
    try:
        with psycopg.connect(admin_url, connect_timeout=5):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def postgresql_database(
    admin_url: str, var_dir: Path, settings: dict[str, str] | None = None, *, name: str = BENCH_DATABASE_NAME
) -> BenchDatabase:
    """A new, empty database `name` on the server of `admin_url` (dropped first). `settings` (e.g.
    {"random_page_cost": "1.1"}) become the database's defaults, to try a tuning."""
    import psycopg
    from psycopg import sql

    identifier = sql.Identifier(name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        # FORCE: a server left over from an interrupted run may still hold connections to it.
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(identifier))
        for setting, value in (settings or {}).items():
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                    identifier, sql.Identifier(setting), sql.Literal(value)
                )
            )
    return postgresql_existing(admin_url, var_dir, name=name)


def postgresql_existing(admin_url: str, var_dir: Path, *, name: str) -> BenchDatabase:
    """The database `name` as it is (one kept by an earlier run with SALESLOOP_BENCH_KEEP=1)."""
    return BenchDatabase("postgresql", _with_database(admin_url, name), var_dir)


def postgresql_exists(admin_url: str, *, name: str) -> bool:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def postgresql_drop(admin_url: str, *, name: str = BENCH_DATABASE_NAME) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def inner_run(database: BenchDatabase, module: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """`python -m MODULE ARGS` against the database (a measurement in a fresh process); its last
    line of output is JSON."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        env={**database.env(), **(env or {})},
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=7200,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def salesloop(database: BenchDatabase, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    """Run `salesloop ARGS` against the database; raise with its output if it fails."""
    command = [sys.executable, "-m", "salesloop.cli", *args]
    done = subprocess.run(
        command,
        env=database.env(),
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        output = done.stdout[-2000:] + done.stderr[-4000:]
        raise RuntimeError(f"`salesloop {' '.join(args)}` failed with {done.returncode}:\n{output}")
    return done
