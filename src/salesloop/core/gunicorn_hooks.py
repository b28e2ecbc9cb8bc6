"""Gunicorn's server hooks for `salesloop serve` (passed as `--config python:salesloop.core.gunicorn_hooks`).

A web process holds a few hundred thousand objects that live as long as it does: Django, its
apps, their models and URL patterns, loaded once. Python's collector walks every one of them at
each full collection; with a request's batch making thousands of short-lived objects, those
passes came every few hundred milliseconds and held the lock of every thread of the process for
tens of milliseconds — the slowest webhook deliveries waited them out (bench/intake_webhooks.py,
SQLite, 300 deliveries/s offered: p99 190 → 116–137 ms). Frozen once the application is loaded,
they are left out of every later pass; what requests make is collected as before.

Django imports the URL configuration — every view module, the API's routers and their schemas,
~50,000 objects — only when the first request is resolved, after the freeze. Left in the
collector's oldest generation, they made each of its full passes ~40 ms, during which every
thread of the process (the one holding the intake's write turn among them) waited: at 300
webhook deliveries a second on PostgreSQL the slowest 2% of deliveries were those waiting out a
full pass (p99 118–142 ms; with the URL configuration loaded before the freeze, a full pass takes
5–16 ms). So the hook loads it first.
"""

from __future__ import annotations

import gc
from typing import Any


def post_worker_init(worker: Any) -> None:
    """After the worker has loaded the application, before it takes its first request."""
    urls_load()
    apps_warm()
    gc.collect()
    gc.freeze()


def apps_warm() -> None:
    """Each app's `warm_up()`, where its AppConfig has one: what the app's first request would
    otherwise wait for, built before the freeze (intake: the mobile prefix table webhook phones are
    read with, ~0.3 s). Asked of the app registry, so core imports no app above it."""
    from django.apps import apps

    for config in apps.get_app_configs():
        warm_up = getattr(config, "warm_up", None)
        if warm_up is not None:
            warm_up()


def urls_load() -> None:
    """Import the URL configuration and everything it includes, as resolving a request would."""
    from django.urls import get_resolver

    patterns = list(get_resolver().url_patterns)
    while patterns:
        pattern = patterns.pop()
        patterns.extend(getattr(pattern, "url_patterns", ()))
