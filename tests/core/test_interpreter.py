"""Process-wide interpreter settings held for a run (an import's): the cyclic collector paused and
the thread switch interval shortened, by blocks that may overlap in one process."""

from __future__ import annotations

import gc
import sys
import threading

import pytest

from salesloop.core.interpreter import cyclic_gc_paused, switch_interval


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


@pytest.fixture
def interval():
    """The process's switch interval, given back whatever the test does."""
    before = sys.getswitchinterval()
    yield before
    sys.setswitchinterval(before)


def test_overlapping_runs_keep_the_short_switch_interval_until_the_last_ends(interval):
    """Two imports in one worker, the first ending first: the second keeps its interval, and when
    it ends the process has the interval from before either — not the one the second found, which
    was the first's (set for good, every thread of the worker would switch ten times as often)."""
    first, second = switch_interval(0.0005), switch_interval(0.0005)
    first.__enter__()
    assert sys.getswitchinterval() == pytest.approx(0.0005)
    second.__enter__()
    first.__exit__(None, None, None)
    assert sys.getswitchinterval() == pytest.approx(0.0005)
    second.__exit__(None, None, None)
    assert sys.getswitchinterval() == pytest.approx(interval)


def test_overlapping_blocks_asking_different_intervals_get_the_shortest(interval):
    with switch_interval(0.002):
        assert sys.getswitchinterval() == pytest.approx(0.002)
        with switch_interval(0.0005):
            assert sys.getswitchinterval() == pytest.approx(0.0005)
        assert sys.getswitchinterval() == pytest.approx(0.002)
    assert sys.getswitchinterval() == pytest.approx(interval)


def test_an_interval_block_that_fails_gives_the_interval_back(interval):
    with pytest.raises(RuntimeError), switch_interval(0.0005):
        raise RuntimeError("the run failed")
    assert sys.getswitchinterval() == pytest.approx(interval)


def test_runs_in_threads_ending_in_any_order_leave_the_process_as_it_was(interval):
    """Many runs in threads, entering and leaving interleaved: while any is running the interval
    is theirs and the collector is off; after the last, both are as before."""
    gc_was = gc.isenabled()
    entered = threading.Barrier(8)
    leave = threading.Event()
    seen: list[tuple[float, bool]] = []

    def run() -> None:
        with switch_interval(0.0005), cyclic_gc_paused():
            entered.wait()
            leave.wait()
            seen.append((sys.getswitchinterval(), gc.isenabled()))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    leave.set()
    for thread in threads:
        thread.join()
    assert len(seen) == 8
    # each one read the settings while itself still running
    assert all(value == pytest.approx(0.0005) for value, _ in seen)
    assert not any(enabled for _, enabled in seen)
    assert sys.getswitchinterval() == pytest.approx(interval)
    assert gc.isenabled() == gc_was
