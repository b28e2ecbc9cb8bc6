"""On SQLite, write transactions of every process take turns on a lock beside the database
(core/sqlite/base.py) instead of SQLite's busy handler, which makes a waiting writer sleep and try
again — so `salesloop serve` can run several web processes on one SQLite file."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from django.db import connection, connections

from salesloop.core.sqlite.base import DatabaseWrapper, _turn_file

sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's write lock")
PROJECT_DIR = Path(__file__).resolve().parents[2]

# Another server process: takes the database's write turn (a transaction that has written), says
# so, and commits when told.
HOLDER = textwrap.dedent(
    """
    import sys
    import django
    django.setup()
    from django.db import connection, transaction
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO arrival (who) VALUES ('holder')")
        print("held", flush=True)
        sys.stdin.readline()
    print("committed", flush=True)
    """
)


def _wrapper(path: Path, *, busy_timeout: float) -> DatabaseWrapper:
    """A connection of our backend to the database file `path`, outside the test database (whose
    transaction holds this process's turn), that gives up on SQLite's lock after `busy_timeout`."""
    settings = dict(connections["default"].settings_dict)
    settings["NAME"] = str(path)
    settings["OPTIONS"] = {**settings["OPTIONS"], "timeout": busy_timeout}
    return DatabaseWrapper(settings, alias="write-turn-test")


@sqlite_only
def test_a_writer_waits_for_another_process_s_transaction_rather_than_for_sqlite_s_lock(
    tmp_path, django_db_blocker
):
    # given a database file, and another process in a write transaction on it
    django_db_blocker.unblock()  # a connection of its own, not the test database's
    path = tmp_path / "turns.sqlite3"
    ours = _wrapper(path, busy_timeout=0.05)  # SQLite's lock alone: "database is locked" at 50 ms
    ours.inc_thread_sharing()  # used by the writer thread below, then here
    with ours.cursor() as cursor:
        cursor.execute("CREATE TABLE arrival (id INTEGER PRIMARY KEY, who TEXT)")
    env = {
        **os.environ,
        "SALESLOOP_DATABASE_URL": f"sqlite:///{path}",
        "DJANGO_SETTINGS_MODULE": "salesloop.settings",
        "PYTHONPATH": str(PROJECT_DIR / "src"),
    }
    env.pop("SALESLOOP_TEST_DATABASE_URL", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        # when a writer of this process begins a transaction meanwhile
        outcome: list[object] = []

        def write() -> None:
            try:
                ours.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)  # as atomic()
                with ours.cursor() as cursor:
                    cursor.execute("INSERT INTO arrival (who) VALUES ('ours')")
                ours.commit()
                outcome.append("written")
            except Exception as exc:  # the test reports whatever the writer met
                outcome.append(exc)
            finally:
                ours.set_autocommit(True)

        writer = threading.Thread(target=write)
        writer.start()
        writer.join(timeout=0.5)
        # then it waits its turn — far longer than SQLite's busy timeout, without failing
        assert outcome == []
        assert writer.is_alive()
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "committed"
        writer.join(timeout=20)
        # and writes once the other process has committed, after it
        assert outcome == ["written"]
        with ours.cursor() as cursor:
            cursor.execute("SELECT who FROM arrival ORDER BY id")
            assert [row[0] for row in cursor.fetchall()] == ["holder", "ours"]
    finally:
        holder.kill()
        holder.wait()
        ours.close()
        ours.dec_thread_sharing()
        django_db_blocker.restore()


@sqlite_only
def test_a_forked_process_takes_turns_with_its_parent(tmp_path):
    # given a process holding the turn of a database, through the descriptor its connections share
    path = str(tmp_path / "forked.sqlite3")
    descriptor = _turn_file(path)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    try:
        # when a child forked from it (as gunicorn forks its workers) asks for the turn
        child = os.fork()
        if child == 0:  # pragma: no cover -- the child reports through its exit status
            try:
                fcntl.flock(_turn_file(path), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os._exit(0)  # excluded: it has its own descriptor
            os._exit(1)  # granted: it shared its parent's lock
        _, status = os.waitpid(child, 0)
        # then the child is made to wait: the parent's turn is not the child's
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
