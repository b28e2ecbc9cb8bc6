"""Reading and checking the next chunks while the database writes this one.

Half of an import's time is the database inserting rows, and SQLite (inside this process) and
psycopg release the GIL while they do; the other half is Python reading and normalising rows. A
reader thread overlaps the two: it reads the file and normalises up to AHEAD chunks in advance —
no database access, so it needs no connection of its own — while the caller plans and writes.
Memory stays bounded by AHEAD + 1 chunks.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from salesloop.intake.imports.engine import PreparedChunk, chunk_prepare
from salesloop.intake.imports.rows import RowNormaliser

AHEAD = 2
_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_END = object()


def chunks_prepared(
    rows: Iterator[tuple[int, list[str]]], normaliser: RowNormaliser, size: int
) -> Iterator[PreparedChunk]:
    """The rows in prepared chunks of `size`, in order. An error in the reader (an unreadable
    file) is raised here, in the caller's thread; if the caller stops early, the reader stops."""
    handoff: queue.Queue[object] = queue.Queue(maxsize=AHEAD)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=_POLL_SECONDS)
            except queue.Full:
                continue
            return True
        return False

    def read() -> None:
        key_cache: dict[str, str] = {}
        try:
            while not stop.is_set():
                chunk = list(itertools.islice(rows, size))
                if not chunk:
                    break
                if not put(chunk_prepare(chunk, normaliser, key_cache)):
                    return
        except BaseException as exc:  # handed to the caller, who raises it
            put(_Failed(exc))
            return
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                close()
        put(_END)

    reader = threading.Thread(target=read, name="import-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = handoff.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            assert isinstance(item, PreparedChunk)
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)
