"""SQLite's WAL is moved into the database file by a background thread, not by the commit of
whichever webhook filled it (core/sqlite/base.py): that request holds the write turn, and every
delivery queued behind it would wait for the checkpoint's fsyncs too."""

from __future__ import annotations

import sqlite3
import time

import pytest
from django.db import connection

from salesloop.core.sqlite.base import _checkpointer

sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's write-ahead log")


@sqlite_only
@pytest.mark.django_db
def test_the_servers_connections_leave_checkpoints_to_the_background():
    # given the database connection a request uses (a file in WAL mode)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        # then its commits never run SQLite's automatic checkpoint
        cursor.execute("PRAGMA wal_autocheckpoint")
        assert cursor.fetchone()[0] == 0


@sqlite_only
def test_a_nudge_moves_committed_pages_into_the_database_file(tmp_path):
    # given a database whose writer never checkpoints: its commits stay in the WAL
    path = tmp_path / "intake.sqlite3"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE payload (body TEXT)")
    writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size_before = path.stat().st_size
    writer.execute("INSERT INTO payload VALUES (?)", ["x" * 200_000])
    assert path.stat().st_size == size_before
    # when the process's checkpointer for that file is nudged (as each commit does)
    _checkpointer(str(path)).nudged.set()
    # then the committed pages reach the database file, and the writer did nothing for it
    deadline = time.monotonic() + 10
    while path.stat().st_size == size_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.stat().st_size > size_before + 150_000
    assert writer.execute("SELECT length(body) FROM payload").fetchone() == (200_000,)
    writer.close()
