"""Django's SQLite backend, with two changes for a burst of concurrent writes (webhook intake)
(and a cheaper conversion of each statement's placeholders, `CursorWrapper`):

1. Write transactions take turns before `BEGIN IMMEDIATE`: the threads of one process on a Python
   lock, then the processes on an exclusive `flock` of a file beside the database
   (`<database>-writeturn`). SQLite has one writer at a time. When several writers ask for its
   write lock at once, SQLite's busy handler makes the losers sleep 1, 2, 5, 10 … 100 ms before
   trying again, so a burst of webhooks turns into a convoy of sleeping writers (we measured 13
   deliveries/s with threads; with two server processes, a p99 of 0.9 s). Waiting on a lock
   instead wakes the next writer the moment the previous one commits — across processes too, the
   kernel wakes a process blocked in `flock` when the holder lets go, and lets go for a holder that
   dies. So `salesloop serve` can run a web process per core on SQLite: one process's Python runs
   while another's transaction writes. SQLite's own locking (busy_timeout) still guards against a
   writer that does not take the turn (the sqlite3 shell, another program).

2. Checkpoints run in a background thread, not in the commit of whichever request filled the WAL.
   SQLite's automatic checkpoint copies the WAL into the database file, with fsyncs, inside the
   committing transaction — while that request still holds the write turn, so every writer queued
   behind it waits too (measured in the intake benchmark: 1.4 ms per commit on average, tens of
   milliseconds for the unlucky one). A file database's connections turn the automatic checkpoint
   off and nudge a per-process thread after each commit; it runs `PRAGMA wal_checkpoint(PASSIVE)`,
   which takes no write lock, at most every CHECKPOINT_INTERVAL seconds (and every
   CHECKPOINT_IDLE seconds anyway, for writes made outside a transaction). The WAL is as durable
   as before — a checkpoint only moves committed pages into the main file — and whatever a process
   leaves in the WAL when it exits is checkpointed by the next one.

PostgreSQL does not use this backend.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
from typing import Any

from django.db.backends.sqlite3 import base

log = logging.getLogger(__name__)

_write_turn = threading.Lock()
_turn_files: dict[tuple[str, int], int] = {}  # (database path, pid) → the turn file's descriptor
_turn_files_lock = threading.Lock()

CHECKPOINT_INTERVAL = 0.2  # seconds between two background checkpoints, at most
CHECKPOINT_IDLE = 5.0  # seconds: checkpoint this often even without a nudge


class _Checkpointer(threading.Thread):
    """One per database file and process: checkpoints the WAL when nudged, off the request path."""

    def __init__(self, path: str) -> None:
        super().__init__(name="sqlite-checkpoint", daemon=True)
        self.path = path
        self.nudged = threading.Event()

    def run(self) -> None:
        connection = sqlite3.connect(
            self.path, timeout=5, isolation_level=None, check_same_thread=False, uri=True
        )
        while True:
            self.nudged.wait(CHECKPOINT_IDLE)
            self.nudged.clear()
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:  # e.g. the file was removed (a test database): try again later
                log.warning("background checkpoint of %s failed: %s", self.path, exc)
            self.nudged.wait(CHECKPOINT_INTERVAL)  # a nudge meanwhile is kept for the next round


_checkpointers: dict[str, _Checkpointer] = {}
_checkpointers_lock = threading.Lock()


def _checkpointer(path: str) -> _Checkpointer:
    with _checkpointers_lock:
        worker = _checkpointers.get(path)
        if worker is None or not worker.is_alive():
            worker = _checkpointers[path] = _Checkpointer(path)
            worker.start()
        return worker


def _turn_file(path: str) -> int:
    """This process's descriptor of the database's turn file, opened once and kept: a lock is
    held by an open file description, so every connection of the process shares it, and the
    Python lock before it lets one thread at a time ask. Keyed by process too: a child forked
    after a connection was made (gunicorn's workers) shares its parent's descriptors, and with
    them its lock, so it opens its own."""
    key = (path, os.getpid())
    with _turn_files_lock:
        descriptor = _turn_files.get(key)
        if descriptor is None:
            descriptor = _turn_files[key] = os.open(
                f"{path}-writeturn", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
        return descriptor


class CursorWrapper(base.SQLiteCursorWrapper):
    """Django's cursor, with its "%s" → "?" conversion done by `str.replace` where that gives the
    same statement (no "%%" in it): Django's regular expression took ~95 µs for one insert of a
    webhook batch (16 rows × 20 columns), several percent of a burst's time (profiled); the
    replacement takes a few."""

    def convert_query(self, query: str, *, param_names: Any = None) -> str:
        if param_names is None and "%%" not in query:
            return query.replace("%s", "?")
        return super().convert_query(query, param_names=param_names)


class DatabaseWrapper(base.DatabaseWrapper):
    _holds_write_turn = False
    _checkpoints: _Checkpointer | None = None
    _turn: int | None = None  # the turn file's descriptor (a file database's connections only)

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        path = str(conn_params.get("database", ""))
        in_memory = path in ("", ":memory:") or "mode=memory" in path
        journal = connection.execute("PRAGMA journal_mode").fetchone()[0]
        if not in_memory and journal == "wal":
            connection.execute("PRAGMA wal_autocheckpoint = 0")
            self._checkpoints = _checkpointer(path)
        self._turn = None if in_memory else _turn_file(path)
        return connection

    def create_cursor(self, name: Any = None) -> Any:
        return self.connection.cursor(factory=CursorWrapper)

    def _start_transaction_under_autocommit(self) -> None:
        _write_turn.acquire()
        self._holds_write_turn = True
        try:
            if self._turn is not None:
                fcntl.flock(self._turn, fcntl.LOCK_EX)  # waits without the GIL
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_write_turn()
            raise

    def _release_write_turn(self) -> None:
        if self._holds_write_turn:
            self._holds_write_turn = False
            try:
                if self._turn is not None:
                    fcntl.flock(self._turn, fcntl.LOCK_UN)
            finally:
                _write_turn.release()

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._release_write_turn()
        if self._checkpoints is not None:
            self._checkpoints.nudged.set()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._release_write_turn()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            self._release_write_turn()
