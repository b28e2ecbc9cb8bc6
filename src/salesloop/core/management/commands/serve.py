"""`salesloop serve`: the production web server (gunicorn) and the task worker, supervised together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError


def default_workers() -> int:
    """One web process per core, on SQLite too: SQLite has one writer at a time, but the writers
    of every process take turns on a lock (core/sqlite) rather than sleeping in SQLite's busy
    handler, so one process's Python runs while another's transaction writes (webhooks on SQLite,
    2 cores: 181 → 228 deliveries/s, bench/intake_webhooks.py)."""
    return os.cpu_count() or 1


def default_threads() -> int:
    """Many threads per process: webhook deliveries that arrive together are written together by
    one of them (intake/coalesce.py), so a process's threads are the size of its bursts' batches.
    Threads mostly wait (for the database, for their batch); Python's lock lets one run at a time."""
    from django.conf import settings

    return 32 if settings.DATABASES["default"]["ENGINE"].endswith("sqlite") else 16


def web_command(bind: str, workers: int, threads: int, *, access_log: bool = False) -> list[str]:
    """The gunicorn command line of `serve`'s web processes."""
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "salesloop.wsgi:application",
        "--bind",
        bind,
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        "--graceful-timeout",
        "10",
        "--timeout",
        "60",
        "--keep-alive",
        "30",
        "--error-logfile",
        "-",
        # Several servers (tests, benchmarks) may run side by side: no shared control socket.
        "--no-control-socket",
        # what each process loaded is left out of the collector's passes (core/gunicorn_hooks.py)
        "--config",
        "python:salesloop.core.gunicorn_hooks",
    ]
    if access_log:
        command += ["--access-logfile", "-"]
    return command


class Command(BaseCommand):
    help = "Serve salesloop with gunicorn plus the background task worker; stops both together."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--bind", default=os.environ.get("SALESLOOP_BIND", "127.0.0.1:8000"))
        parser.add_argument(
            "--workers",
            type=int,
            default=int(os.environ.get("SALESLOOP_WEB_WORKERS", 0) or 0),
            help="web worker processes (default: one per core)",
        )
        parser.add_argument(
            "--threads", type=int, default=0, help="threads per web worker (default 16; 32 on SQLite)"
        )
        parser.add_argument(
            "--no-worker", action="store_true", help="serve the web only, without the task worker"
        )
        parser.add_argument("--access-log", action="store_true", help="log every request")

    def handle(self, *args: Any, **options: Any) -> None:
        workers = options["workers"] or default_workers()
        threads = options["threads"] or default_threads()
        if workers < 1 or threads < 1:
            raise CommandError("--workers and --threads must be at least 1")
        web_cmd = web_command(options["bind"], workers, threads, access_log=options["access_log"])
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "salesloop.settings"),
        }
        children = [subprocess.Popen(web_cmd, env=env)]  # noqa: S603 -- our own argv, no shell
        if not options["no_worker"]:
            worker_cmd = [sys.executable, "-m", "salesloop.cli", "worker", "--no-reload", "--interval", "1"]
            children.append(subprocess.Popen(worker_cmd, env=env))  # noqa: S603 -- our own argv
        self.stdout.write(
            f"salesloop serving on http://{options['bind']} ({workers} web workers"
            f"{'' if options['no_worker'] else ' + task worker'})"
        )

        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        exit_code = 0
        try:
            while not stopping:
                for child in children:
                    code = child.poll()
                    if code is not None:
                        # One half of the product died: stop the other rather than limp on.
                        self.stderr.write(
                            f"{child.args[2] if len(child.args) > 2 else child.args} exited with {code}"
                        )
                        exit_code = code or 1
                        stopping = True
                time.sleep(0.2)
        finally:
            for child in children:
                if child.poll() is None:
                    child.terminate()
            deadline = time.monotonic() + 15
            for child in children:
                try:
                    child.wait(timeout=max(deadline - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired:
                    child.kill()
        if exit_code:
            raise CommandError(f"stopped: a child process exited with {exit_code}")
