"""Group commit for deliveries arriving at once (the way databases batch their log writes).

Each web thread that receives a delivery joins a queue. If no thread is working the queue, it
becomes the leader: it takes everything queued, stores and processes it as one batch
(`burst.deliveries_receive`), hands every waiting thread its own outcome, and passes the lead to
the first thread that queued meanwhile. At a trickle a batch is one delivery and nobody waits; in
a burst, deliveries that arrive while a batch is being written go together in the next one, so
the fixed cost of a transaction and of routing is shared by all of them.

A process that can say when its batch is about to be written (`top_up`) is handed `more`: called
once its write turn is held (on SQLite, after waiting for another process's transaction), it adds
to the batch whatever queued meanwhile — up to the batch's limit — rather than leaving it for the
next batch, which would wait for the turn all over again. With two web processes on SQLite,
batches that waited for each other's transactions were half as large as they could be.

Every thread still answers its own request only after its delivery is committed, so the
acknowledgement means what it meant one at a time. The queue lives in one process and holds
nothing between batches: many processes each batch their own, and the database's unique
identities settle what they race for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH = 200  # deliveries per batch: a few hundred keep one transaction short (tens of ms)
LINGER_SECONDS = 0.004  # how long a leader may wait for its batch to fill (see `_gather`)
LINGER_STEP = 0.0005


class _Waiter(Generic[Item, Result]):
    __slots__ = ("error", "items", "lead", "results", "woken")

    def __init__(self, items: list[Item]) -> None:
        self.items = items
        self.results: list[Result] | None = None
        self.error: BaseException | None = None
        self.lead = False
        self.woken = threading.Event()


class Coalescer(Generic[Item, Result]):
    def __init__(
        self,
        process: Callable[..., list[Result]],
        max_batch: int = MAX_BATCH,
        linger: float = LINGER_SECONDS,
        *,
        top_up: bool = False,
    ) -> None:
        """`process(items)` returns one result per item, in order; with `top_up`, it is called as
        `process(items, more=more)` and may call `more()` (once or more) for further items, whose
        results follow the others'."""
        self._process = process
        self._top_up = top_up
        self._max_batch = max_batch
        self._linger = linger
        self._lock = threading.Lock()
        self._queue: list[_Waiter[Item, Result]] = []
        self._busy = False
        self._last_batch = 1

    def _gather(self) -> None:
        """In a burst, let the batch fill up to the size of the last one, for a few milliseconds
        at most. Without this a batch often leaves with the one or two deliveries that came in
        while the previous batch answered, and the next waits behind it with the rest. At a
        trickle the last batch was one delivery, so nothing waits."""
        deadline = time.monotonic() + self._linger
        while time.monotonic() < deadline:
            with self._lock:
                if sum(len(waiter.items) for waiter in self._queue) >= self._last_batch:
                    return
            time.sleep(LINGER_STEP)

    def submit(self, items: list[Item]) -> list[Result]:
        """Process `items` (in a batch with whatever else is queued) and return their results."""
        waiter: _Waiter[Item, Result] = _Waiter(items)
        with self._lock:
            self._queue.append(waiter)
            leading = not self._busy
            self._busy = True
        if not leading:
            waiter.woken.wait()
            if not waiter.lead:
                return self._result(waiter)
        self._lead()
        return self._result(waiter)

    @staticmethod
    def _result(waiter: _Waiter[Item, Result]) -> list[Result]:
        if waiter.error is not None:
            raise waiter.error
        assert waiter.results is not None
        return waiter.results

    def _take(self, batch: list[_Waiter[Item, Result]], size: int) -> int:
        """Move queued waiters into `batch` while they fit (the first always does); the new size."""
        with self._lock:
            while self._queue and (not batch or size + len(self._queue[0].items) <= self._max_batch):
                waiter = self._queue.pop(0)
                batch.append(waiter)
                size += len(waiter.items)
        return size

    def _lead(self) -> None:
        self._gather()
        batch: list[_Waiter[Item, Result]] = []
        size = self._take(batch, 0)
        self._last_batch = size
        try:
            items = [item for waiter in batch for item in waiter.items]
            if self._top_up:

                def more() -> list[Item]:
                    nonlocal size
                    before = len(batch)
                    size = self._take(batch, size) if size < self._max_batch else size
                    self._last_batch = size
                    return [item for waiter in batch[before:] for item in waiter.items]

                results = self._process(items, more=more)
            else:
                results = self._process(items)
            start = 0
            for waiter in batch:
                waiter.results = results[start : start + len(waiter.items)]
                start += len(waiter.items)
        except BaseException as exc:  # every waiter of the batch answers with the failure
            for waiter in batch:
                waiter.error = exc
        finally:
            with self._lock:
                successor = self._queue[0] if self._queue else None
                if successor is None:
                    self._busy = False
                else:
                    successor.lead = True
            for waiter in batch:
                waiter.woken.set()
            if successor is not None:
                successor.woken.set()
