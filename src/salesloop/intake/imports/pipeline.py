"""Reading and checking the rows of a file, in another process while this one plans, writes and
routes (SPEC C1.5).

Reading a CSV and normalising its rows (phones, provinces, company keys) is pure Python: ~14 s of
CPU for a million rows. Done in this process it adds to the run; done in a thread it competes for
the GIL, and worse, every time the database hands a row back (SQLite releases the GIL for each
step of a statement) the writer waits up to a switch interval for the reader to let go: at a
million rows the look-ups took 30 s instead of 6 (measured). So a large file is read by a reader
*process* on the machine's other core, which sends prepared pieces of PIECE_ROWS rows through a
bounded queue (memory stays at a few pieces); the run takes as many pieces as it wants for its
next chunk (through files, see `reader`). A small file — or a process that may not start
children — is read in place.

The reader needs no database connection: it reads the file, the job's mapping and nothing else.
Its entry point is in `reader`, which a spawned process can import before Django is set up.
"""

from __future__ import annotations

import itertools
import logging
import math
import multiprocessing
import queue
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from salesloop.intake.imports.engine import PreparedChunk, chunk_prepare
from salesloop.intake.imports.files import FileShape, ImportFileError, rows_read
from salesloop.intake.imports.reader import POLL_SECONDS, Failed, Piece, piece_load, reader_main
from salesloop.intake.imports.rows import RowNormaliser

log = logging.getLogger(__name__)

PIECE_ROWS = 2_500
AHEAD_PIECES = 24  # up to 60,000 rows read ahead: one large chunk and the start of the next
PROCESS_MIN_ROWS = 50_000  # below this a reader process costs more to start than it saves


class PreparedRows:
    """The prepared rows of a file, taken chunk by chunk: `take(n)` is the next chunk of (at
    least) n rows, or None at the end. Close it when done (or use it as a context manager)."""

    def __init__(
        self,
        path: Path,
        shape: FileShape,
        mapping: Sequence[str],
        *,
        skip: int = 0,
        rows_left: int,
        unit: int = PIECE_ROWS,
    ) -> None:
        """`unit`: every `take` asks for a multiple of it, so pieces are cut to divide it."""
        piece_rows = math.gcd(PIECE_ROWS, unit)
        self._pieces: Iterator[PreparedChunk]
        self._head: Any = None
        self._process: Any = None
        self._queue: Any = None
        self._stop: Any = None
        self._exchange = ""
        if rows_left >= PROCESS_MIN_ROWS and not multiprocessing.current_process().daemon:
            # The process takes ~1.5 s to start (a new interpreter, Django set up): meanwhile this
            # one reads the first chunk itself, and the reader starts after it.
            head = unit
            try:
                self._start(path, shape, mapping, skip + head, piece_rows)
            except OSError:  # no processes here (limits, a sandbox): read in place
                log.warning("import: could not start a reader process; reading in place", exc_info=True)
                self._process = None
                if self._exchange:
                    shutil.rmtree(self._exchange, ignore_errors=True)
        if self._process is None:
            self._pieces = prepared_pieces(path, shape, mapping, skip, piece_rows)
        else:
            self._head = prepared_pieces(path, shape, mapping, skip, piece_rows, limit=head)
            self._pieces = itertools.chain(self._head, self._received())
        self.in_process = self._process is not None

    def _start(
        self, path: Path, shape: FileShape, mapping: Sequence[str], skip: int, piece_rows: int
    ) -> None:
        # spawn, not fork: the run's process holds database connections and maybe threads, which a
        # forked child must not inherit.
        context = multiprocessing.get_context("spawn")
        self._queue = context.Queue(maxsize=AHEAD_PIECES)
        self._stop = context.Event()
        self._exchange = tempfile.mkdtemp(prefix="salesloop-import-")
        self._process = context.Process(
            target=reader_main,
            args=(
                str(path),
                shape,
                list(mapping),
                skip,
                piece_rows,
                self._exchange,
                self._queue,
                self._stop,
            ),
            name="import-reader",
            daemon=True,
        )
        self._process.start()

    def _received(self) -> Iterator[PreparedChunk]:
        while True:
            try:
                item = self._queue.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if not self._process.is_alive():
                    raise RuntimeError(
                        f"the import's reader process stopped (exit code {self._process.exitcode})"
                    ) from None
                continue
            if isinstance(item, Piece):
                yield piece_load(item)
            elif isinstance(item, Failed):
                if item.kind == "file":
                    raise ImportFileError(item.message, status=item.status)
                raise RuntimeError(f"{item.kind}: {item.message}")
            else:
                return

    def take(self, rows: int) -> PreparedChunk | None:
        """The next `rows` rows (rounded up to whole pieces), or None when the file is done."""
        taken: list[PreparedChunk] = []
        count = 0
        while count < rows:
            piece = next(self._pieces, None)
            if piece is None:
                break
            taken.append(piece)
            count += piece.rows
        if not taken:
            return None
        if len(taken) == 1:
            return taken[0]
        return PreparedChunk(
            rows=count,
            candidates=[c for piece in taken for c in piece.candidates],
            rejects=[r for piece in taken for r in piece.rejects],
        )

    def close(self) -> None:
        if self._process is None:
            close = getattr(self._pieces, "close", None)
            if close is not None:
                close()
            return
        self._head.close()
        self._stop.set()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.terminate()  # our own child, by its handle
            self._process.join(timeout=5)
        self._queue.close()
        self._queue.cancel_join_thread()
        self._process = None
        shutil.rmtree(self._exchange, ignore_errors=True)

    def __enter__(self) -> PreparedRows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prepared_pieces(
    path: Path,
    shape: FileShape,
    mapping: Sequence[str],
    skip: int,
    piece_rows: int,
    *,
    limit: int | None = None,
) -> Iterator[PreparedChunk]:
    """The rows after the first `skip`, normalised, in pieces of `piece_rows`; with `limit`, only
    that many rows."""
    normaliser = RowNormaliser(shape.headers, mapping)
    source = rows_read(path, shape, skip=skip)
    rows = source if limit is None else itertools.islice(source, limit)
    try:
        while True:
            piece = list(itertools.islice(rows, piece_rows))
            if not piece:
                return
            yield chunk_prepare(piece, normaliser)
    finally:
        source.close()
