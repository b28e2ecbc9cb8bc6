"""Background work goes through Django's tasks API: the database queue in production, run by
`salesloop worker` and inside `salesloop serve`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from salesloop.crm.models import Lead
from tests.factories import lead_make

DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_worker_runs_a_task_enqueued_on_the_database_queue(org):
    from django_tasks_db.models import DBTaskResult

    from salesloop.pipeline.tasks import leads_projection_rebuild

    lead = lead_make(owner=org.alice)
    Lead.objects.filter(pk=lead.pk).update(status="won")  # a projection out of step with its facts
    with override_settings(TASKS=DB_TASKS):
        result = leads_projection_rebuild.enqueue([lead.pk])
        assert DBTaskResult.objects.get(id=result.id).status == "READY"  # queued, not run inline
        assert Lead.objects.get(pk=lead.pk).status == "won"
        from django.core.management import call_command

        call_command("worker", batch=True, startup_delay=False, reload=False, verbosity=0)
        stored = DBTaskResult.objects.get(id=result.id)
    assert stored.status == "SUCCESSFUL"
    assert Lead.objects.get(pk=lead.pk).status == "open"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server_database(tmp_path):
    """A database of its own for a server subprocess: a SQLite file, or a fresh PostgreSQL database
    when the suite runs on PostgreSQL."""
    test_url = os.environ.get("SALESLOOP_TEST_DATABASE_URL", "")
    if not test_url.startswith("postgres"):
        yield f"sqlite:///{tmp_path / 'serve.sqlite3'}"
        return
    import psycopg

    name = f"salesloop_serve_{uuid.uuid4().hex[:8]}"
    base = test_url.rsplit("/", 1)[0]
    admin = psycopg.connect(f"{base}/postgres", autocommit=True)  # the maintenance database always exists
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _salesloop(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "salesloop.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_serve_answers_http_and_its_worker_runs_tasks(tmp_path, server_database):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESLOOP_TEST")}
    env.update(
        SALESLOOP_DATABASE_URL=server_database,
        SALESLOOP_VAR_DIR=str(tmp_path / "var"),
        SALESLOOP_TESTING="0",
        DJANGO_SETTINGS_MODULE="salesloop.settings",
    )
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    _salesloop(env, "migrate", "-v0")
    _salesloop(
        env,
        "shell",
        "-c",
        "from salesloop.accounts.models import Region; Region.objects.create(code='east', name='华东')",
    )
    _salesloop(env, "user", "create", "--username", "ops", "--password", "pw-long-enough", "--role", "admin")
    token = _salesloop(env, "token", "create", "ops")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "salesloop.cli", "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        me = None
        for _ in range(100):
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/v1/me", headers={"Authorization": f"Bearer {token}"}
                )
                with urllib.request.urlopen(request, timeout=2) as response:
                    me = json.loads(response.read())
                break
            except OSError:
                time.sleep(0.2)
        assert me is not None and me["username"] == "ops"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=5) as response:
            assert response.status == 200
        # a task enqueued by anyone is picked up by the worker that `serve` started
        marker = tmp_path / "done.txt"
        code = f"from salesloop.core.tasks import touch_file; print(touch_file.enqueue({str(marker)!r}).id)"
        _salesloop(env, "shell", "-c", code)
        for _ in range(100):
            if marker.exists():
                break
            time.sleep(0.2)
        assert marker.exists(), "the task worker inside `salesloop serve` did not run the task"
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0].decode(errors="replace")
    assert server.returncode is not None, output
    assert "Traceback" not in output, output
    assert Path(settings.BASE_DIR).exists()
