"""The reader process's entry point (see `pipeline`). Nothing here imports Django at module level:
a spawned process unpickles its target — importing this module — before Django is set up.

A prepared piece (2,500 rows) pickles to ~3 MB. Sent through the queue's pipe it would cross in
64 KiB writes, each waking the other process: ~0.7 s of the run's time per 50,000-row chunk on
a busy two-core machine (measured: 16.5 s of waiting at a million rows, with the reader far
ahead). So the reader writes each piece to a file in a private temporary directory and the queue
carries only its name; the run reads it in one go and deletes it. At most AHEAD_PIECES files
exist at a time.

If the run's process dies without closing (killed, out of memory), nobody takes the pieces: the
reader notices that its parent is gone, stops, and removes the exchange directory, rather than
waiting on a full queue for ever."""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from salesloop.core.interpreter import cyclic_gc_paused

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Failed:
    """What went wrong in the reader, handed to the run, which raises it."""

    kind: str  # "file" (ImportFileError) or the exception's class name
    message: str
    status: int = 400


@dataclass(frozen=True)
class Piece:
    """A prepared piece, pickled into a file of the exchange directory."""

    path: str


END = "end"


def piece_dump(prepared: Any) -> bytes:
    """A prepared piece as the reader writes it: its candidates as plain tuples. A tuple subclass
    pickles as a call of its class on a plain tuple made first, so each row was built twice;
    rewrapping them on loading costs the run ~a quarter less (measured: 30 against 40 ms per
    10,000 rows, ~1 s of the run's process at a million rows)."""
    plain = [tuple(candidate) for candidate in prepared.candidates]
    return pickle.dumps((prepared.rows, plain, prepared.rejects), protocol=pickle.HIGHEST_PROTOCOL)


def piece_load(piece: Piece) -> Any:
    """The PreparedChunk of a piece the reader wrote (`piece_dump`), its file removed."""
    from salesloop.intake.imports.engine import PreparedChunk
    from salesloop.intake.imports.rows import Candidate

    path = Path(piece.path)
    data = path.read_bytes()
    path.unlink()
    rows, plain, rejects = pickle.loads(data)  # noqa: S301 -- written by our own reader process, in our own directory
    wrap = tuple.__new__
    return PreparedChunk(rows=rows, candidates=[wrap(Candidate, values) for values in plain], rejects=rejects)


@cyclic_gc_paused()
def reader_main(
    path: str,
    shape: Any,
    mapping: list[str],
    skip: int,
    piece_rows: int,
    exchange: str,
    out: Any,
    stop: Any,
) -> None:
    """Read the file and hand its pieces over, with the cyclic collector paused: the reader makes
    and pickles thousands of rows a piece, which it would walk again and again along with
    Django's objects — 6.5 s of the reader's 37 s of CPU at a million rows (`gc.callbacks`)."""
    import django

    django.setup()
    from salesloop.intake.imports.files import ImportFileError
    from salesloop.intake.imports.pipeline import prepared_pieces

    parent = multiprocessing.parent_process()

    def put(item: object) -> bool:
        while not stop.is_set():
            if parent is not None and not parent.is_alive():  # the run is gone: nobody will read
                shutil.rmtree(exchange, ignore_errors=True)
                return False
            try:
                out.put(item, timeout=POLL_SECONDS)
            except queue.Full:
                continue
            return True
        return False

    try:
        for number, piece in enumerate(prepared_pieces(Path(path), shape, mapping, skip, piece_rows)):
            target = Path(exchange) / f"{number:07d}.pickle"
            target.write_bytes(piece_dump(piece))
            if not put(Piece(str(target))):
                return
    except ImportFileError as exc:
        put(Failed("file", str(exc), exc.status))
        return
    except Exception as exc:  # handed to the run, which fails the job with it
        put(Failed(type(exc).__name__, str(exc)))
        return
    put(END)
