"""Gunicorn's server hooks for `salesloop serve` (passed as `--config python:salesloop.core.gunicorn_hooks`).

A web process holds a few hundred thousand objects that live as long as it does: Django, its
apps, their models and URL patterns, loaded once. Python's collector walks every one of them at
each full collection; with a request's batch making thousands of short-lived objects, those
passes came every few hundred milliseconds and held the lock of every thread of the process for
tens of milliseconds — the slowest webhook deliveries waited them out (bench/intake_webhooks.py,
SQLite, 300 deliveries/s offered: p99 190 → 116–137 ms). Frozen once the application is loaded,
they are left out of every later pass; what requests make is collected as before.
"""

from __future__ import annotations

import gc
from typing import Any


def post_worker_init(worker: Any) -> None:
    """After the worker has loaded the application, before it takes its first request."""
    gc.collect()
    gc.freeze()
