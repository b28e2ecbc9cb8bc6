"""Django's SQLite backend, with one change: write transactions of one process take turns on a
Python lock before `BEGIN IMMEDIATE`.

SQLite has one writer at a time. When several threads of a server ask for the write lock at
once, SQLite's busy handler makes the losers sleep 1, 2, 5, 10 … 100 ms before trying again, so a
burst of webhooks turns into a convoy of sleeping threads (we measured 13 deliveries/s). Waiting
on a Python lock instead wakes the next writer the moment the previous one commits. Across
processes SQLite's own locking (WAL, busy_timeout) still applies; `salesloop serve` runs one web
process with threads on SQLite for this reason. PostgreSQL does not use this backend.
"""

from __future__ import annotations

import threading

from django.db.backends.sqlite3 import base

_write_turn = threading.Lock()


class DatabaseWrapper(base.DatabaseWrapper):
    _holds_write_turn = False

    def _start_transaction_under_autocommit(self) -> None:
        _write_turn.acquire()
        self._holds_write_turn = True
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_write_turn()
            raise

    def _release_write_turn(self) -> None:
        if self._holds_write_turn:
            self._holds_write_turn = False
            _write_turn.release()

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._release_write_turn()

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
