"""The production server (`salesloop serve`) for one benchmark run, and a keep-alive HTTP client."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from types import TracebackType
from typing import Any

from bench.databases import PROJECT_DIR, BenchDatabase


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """`salesloop serve --no-worker` on a free port, stopped (with its gunicorn workers) on exit."""

    def __init__(self, database: BenchDatabase, *, ready_timeout: float = 90) -> None:
        self.database = database
        self.port = free_port()
        self.ready_timeout = ready_timeout
        # The server's output, shown if it fails to start; closed in stop().
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Server:
        command = [
            sys.executable,
            "-m",
            "salesloop.cli",
            "serve",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--no-worker",
        ]
        # A session of its own: if `serve` does not stop its gunicorn workers, we can stop them all.
        self._process = subprocess.Popen(
            command,
            env=self.database.env(),
            cwd=PROJECT_DIR,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._wait_ready()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        """Until /api/v1/me answers at all (401 without a token is an answer)."""
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(
                    f"`salesloop serve` exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/api/v1/me")
                connection.getresponse().read()
                connection.close()
                return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"`salesloop serve` did not answer within {self.ready_timeout:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, chars: int = 3000) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read()[-chars:]

    def stop(self) -> None:
        process = self._process
        if process is None:
            return
        self._process = None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        # Whatever `serve` started and left behind is in its session: stop exactly that group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        self._log.close()


class ApiClient:
    """One keep-alive connection, like one browser or integration talking to the API."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def get(self, path: str) -> tuple[float, Any]:
        """(seconds from sending the request to having read the whole body, decoded JSON)."""
        started = time.perf_counter()
        try:
            self._connection.request("GET", path, headers=self.headers)
            response = self._connection.getresponse()
            body = response.read()
        except (http.client.HTTPException, OSError):
            # The server closed an idle keep-alive connection: reconnect once, and time that.
            self._connection.close()
            self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            started = time.perf_counter()
            self._connection.request("GET", path, headers=self.headers)
            response = self._connection.getresponse()
            body = response.read()
        seconds = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}: {body[:500]!r}")
        return seconds, json.loads(body)

    def close(self) -> None:
        self._connection.close()
