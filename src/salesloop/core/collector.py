"""Python's cyclic garbage collector, paused for work that does not need it.

The collector runs every few hundred allocations of container objects and, every so often, walks
every container the process keeps alive, holding the GIL throughout: for a process that keeps
millions of rows alive at a time (an import's chunk, its plan and the next chunk's), each full
pass took ~180 ms during which none of its threads moved."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _CollectorPauses:
    """The runs of this process that have the cyclic collector off (`cyclic_gc_paused`)."""

    lock = threading.Lock()
    runs = 0
    was_enabled = False  # before the first of them


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block, and on again after the last such block
    of the process ends (blocks may overlap, in threads), if it was on before the first. For work
    that makes hardly any reference cycles: what it makes is freed as it goes by reference
    counting, and the few cycles it leaves by the first collection after the block.

    An import's run (`intake.imports.services.import_run`): 51 full passes of ~180 ms and 15 s of a
    million-row run's 102 in all generations on PostgreSQL (measured with `gc.callbacks`), and
    ~4,000 objects of cycles left at the end. Its reader process (`intake.imports.reader`): 6.5 s
    of its 37 s of CPU."""
    pauses = _CollectorPauses
    with pauses.lock:
        if not pauses.runs:
            pauses.was_enabled = gc.isenabled()
        pauses.runs += 1
        gc.disable()
    try:
        yield
    finally:
        with pauses.lock:
            pauses.runs -= 1
            if not pauses.runs and pauses.was_enabled:
                gc.enable()
