"""Process-wide interpreter settings that a long run changes for as long as it lasts: Python's
cyclic garbage collector paused, its thread switch interval shortened.

Either is one setting for the whole process, and runs may overlap in it (threads of a task worker,
two imports at once): a setting is changed when the first such block begins, and given back as it
was before that one when the last of them ends — not when the first ends, which would take it away
from a run still going, nor with whatever the last one found, which may be another run's value."""

from __future__ import annotations

import gc
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any


class _Held:
    """One process-wide setting held by overlapping blocks: each block asks for a value, the one
    in force is `choose` of the values asked by the blocks still running, and the value from before
    the first block comes back after the last."""

    def __init__(self, read: Callable[[], Any], write: Callable[[Any], None], choose: Callable[..., Any]):
        self._read, self._write, self._choose = read, write, choose
        self._lock = threading.Lock()
        self._asked: Counter[Any] = Counter()
        self._before: Any = None

    @contextmanager
    def held(self, value: Any) -> Iterator[None]:
        with self._lock:
            if not self._asked:
                self._before = self._read()
            self._asked[value] += 1
            self._write(self._choose(self._asked))
        try:
            yield
        finally:
            with self._lock:
                self._asked[value] -= 1
                if not self._asked[value]:
                    del self._asked[value]
                self._write(self._choose(self._asked) if self._asked else self._before)


def _collector_set(enabled: bool) -> None:
    if enabled:
        gc.enable()
    else:
        gc.disable()


_COLLECTOR = _Held(gc.isenabled, _collector_set, all)
_SWITCH_INTERVAL = _Held(sys.getswitchinterval, sys.setswitchinterval, min)


def cyclic_gc_paused() -> AbstractContextManager[None]:
    """Python's cyclic garbage collector off for the block, and on again after the last such block
    of the process ends, if it was on before the first. For work that makes hardly any reference
    cycles: what it makes is freed as it goes by reference counting, and the few cycles it leaves
    by the first collection after the block.

    The collector runs every few hundred allocations of container objects and, every so often,
    walks every container the process keeps alive, holding the GIL throughout: for a process that
    keeps millions of rows alive at a time (an import's chunk, its plan and the next chunk's),
    each full pass took ~180 ms during which none of its threads moved. An import's run
    (`intake.imports.services.import_run`): 51 full passes of ~180 ms and 15 s of a million-row
    run's 102 in all generations on PostgreSQL (measured with `gc.callbacks`), and ~4,000 objects
    of cycles left at the end. Its reader process (`intake.imports.reader`): 6.5 s of its 37 s of
    CPU."""
    return _COLLECTOR.held(False)


def switch_interval(seconds: float) -> AbstractContextManager[None]:
    """Python's thread switch interval set to `seconds` for the block (the shortest asked, while
    blocks overlap), and given back after the last.

    An import's writer lets go of the GIL around every statement (its critical path: SQLite's
    inserts, PostgreSQL's copies) while routing and planning run Python in threads of their own;
    when its statement returns it waits for the GIL until the running thread is asked to give it
    up — after the interval, 5 ms by default — about once per multi-row statement of ~1,000 rows.
    At 0.5 ms a million rows took 91.7 and 95.3 s on SQLite against 100.3 and 100.5 s at 5 ms,
    alternating; on PostgreSQL 100.2 against 99.7 s: no difference measured (bench/README.md)."""
    return _SWITCH_INTERVAL.held(seconds)
