"""The cyclic collector paused for work that keeps millions of objects alive (an import's run)."""

from __future__ import annotations

import gc

from salesloop.core.collector import cyclic_gc_paused


def test_overlapping_pauses_turn_the_collector_on_when_the_last_one_ends():
    """Two runs in one process (threads of a worker) may overlap: the collector comes back when
    the last of them ends, not the first — and stays off if it was off before them."""
    assert gc.isenabled()
    first, second = cyclic_gc_paused(), cyclic_gc_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()

    gc.disable()
    try:
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
