"""`salesloop serve`'s web processes freeze what they loaded (core/gunicorn_hooks.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from salesloop.core.management.commands.serve import web_command

# In a process of its own, as gunicorn runs it: the command line `serve` gives gunicorn, read by
# gunicorn's own configuration; the application loaded; then the hook gunicorn calls after loading.
_WORKER = """
import gc, json, sys
from gunicorn.app.wsgiapp import WSGIApplication
sys.argv = ["gunicorn", *json.loads(sys.argv[1])]
app = WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]")
application = app.load()  # what a worker loads (Django and every app)
before = gc.get_freeze_count()
app.cfg.post_worker_init(None)
from salesloop.intake.imports import phone_fast
tables = phone_fast._prefix_table.cache_info().currsize
tracked = len(gc.get_objects())
from django.urls import resolve
for path in ("/hooks/some-source", "/api/v1/intake/events", "/leads/"):  # a request's first step
    resolve(path)
print(json.dumps({"hook": app.cfg.post_worker_init.__module__, "before": before,
                  "frozen": gc.get_freeze_count(), "tracked": tracked,
                  "resolved": len(gc.get_objects()) - tracked, "tables": tables}))
"""


def test_a_web_process_leaves_what_it_loaded_out_of_the_collector_s_passes(tmp_path):
    gunicorn_args = web_command("127.0.0.1:0", 1, 1)[3:]  # after `python -m gunicorn`
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESLOOP_TEST")}
    env.update(
        SALESLOOP_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        SALESLOOP_VAR_DIR=str(tmp_path / "var"),
        DJANGO_SETTINGS_MODULE="salesloop.settings",
    )
    out = subprocess.run(
        [sys.executable, "-c", _WORKER, json.dumps(gunicorn_args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["hook"] == "salesloop.core.gunicorn_hooks"
    assert seen["before"] == 0
    # Django and the apps: tens of thousands of objects, no longer walked by the collector
    assert seen["frozen"] > 20_000
    assert seen["tracked"] < seen["frozen"] / 10
    # the URL configuration (every view, the API's schemas) was loaded before the freeze: the first
    # requests resolved add next to nothing to what the collector walks (~50,000 objects if not)
    assert seen["resolved"] < 2_000, seen
    # the mobile prefix table a delivery's phone is read with is built, not left to the first webhook
    assert seen["tables"] == 1
