"""Crash recovery of a bulk import (SPEC C1.5) when the rows are read by the reader process: a
worker lost mid-file leaves its job running; once stalled it is started again and carries on from
its first row not done — every row imported once, every new lead routed once. And the reader
process does not outlive a run that died without closing it."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from salesloop.core import clock
from salesloop.crm.models import Contact, Lead
from salesloop.intake.imports import engine, pipeline, services
from salesloop.intake.imports.models import ImportStatus
from salesloop.routing.models import Assignment
from tests.intake.test_imports import csv_bytes, job_of

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


class WorkerLost(BaseException):
    """What a killed worker looks like to the run: nothing of it catches this, nothing is saved."""


def test_a_stalled_import_read_by_the_reader_process_resumes_and_routes_each_lead_once(org, monkeypatch):
    from tests.routing.conftest import definition, in_force, rule

    # given a region round-robin in force, a file read by a reader process, in chunks of 4 rows
    in_force(org.director, definition(rule("east", 10, when={"regions": ["east"]}, regions=["east"])))
    monkeypatch.setattr(pipeline, "PROCESS_MIN_ROWS", 1)
    monkeypatch.setattr(services, "CHUNK_ROWS", 4)
    monkeypatch.setattr(services, "CHUNK_ROWS_MAX", 4)
    rows = [[f"客户{i}", f"138162{i:05d}", "", "", "", "", ""] for i in range(14)]
    job = services.import_start(actor=org.carol, job=job_of(org.carol, csv_bytes(rows)), enqueue=False)
    # and a worker lost while writing the second chunk: the job stays running, one chunk done
    write = engine.chunk_write
    calls = {"n": 0}

    def lost_in_second_chunk(plan, ctx, writer, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise WorkerLost
        return write(plan, ctx, writer, *args, **kwargs)

    monkeypatch.setattr(services, "chunk_write", lost_in_second_chunk)
    started = clock.now()
    clock.set_now(started)
    with pytest.raises(WorkerLost):
        services.import_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.rows_done, Lead.objects.count(), Assignment.objects.count()) == (
        ImportStatus.RUNNING, 4, 4, 4,
    )  # fmt: skip
    # when it is started again at once, it is refused: its worker may still be at work
    with pytest.raises(ValidationError):
        services.import_start(actor=org.carol, job=job, enqueue=False)
    # but once stalled it starts again, and runs to the end with the reader process
    clock.set_now(started + services.STALLED_AFTER + dt.timedelta(seconds=1))
    services.import_start(actor=org.carol, job=job, enqueue=False)
    timings = services.RunTimings()
    job = services.import_run(job_id=job.pk, timings=timings)
    # then it carried on from row 5: every row imported once, every new lead routed once
    assert timings.reader_process is True
    assert (job.status, job.rows_done, job.created, job.duplicates_in_file) == (ImportStatus.DONE, 14, 14, 0)
    assert Contact.objects.filter(phone__startswith="+86138162").count() == 14
    assert Lead.objects.count() == 14
    assert Assignment.objects.count() == 14
    assert sorted(Assignment.objects.values_list("lead_id", flat=True)) == sorted(
        Lead.objects.values_list("pk", flat=True)
    )
    assert set(Lead.objects.values_list("owner_id", flat=True)) == {org.alice.pk, org.bob.pk}


_ORPHAN_RUN = """
import json, os, sys
import django
django.setup()
from pathlib import Path
from salesloop.intake.imports.files import file_inspect
from salesloop.intake.imports.mapping import mapping_guess
from salesloop.intake.imports import pipeline
from salesloop.intake.imports.pipeline import PreparedRows
pipeline.PROCESS_MIN_ROWS = 1
path = Path(sys.argv[1])
shape = file_inspect(path, name=path.name, size=path.stat().st_size)
rows = PreparedRows(path, shape, mapping_guess(shape.headers), rows_left=shape.rows_total, unit=10)
rows.take(10)
print(json.dumps({"reader": rows._process.pid, "exchange": rows._exchange}), flush=True)
os._exit(0)  # killed: nothing closes the reader
"""


def _running(pid: int) -> bool:
    """Whether the process runs (a zombie nobody reaps has stopped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_the_reader_process_stops_and_cleans_up_when_its_run_dies(tmp_path):
    # given a run whose reader process has filled its queue (400 rows in pieces of 10)
    data = tmp_path / "leads.csv"
    data.write_bytes(csv_bytes([[f"客户{i}", f"138162{i:05d}", "", "", "", "", ""] for i in range(400)]))
    # when the run's process dies without closing it
    done = subprocess.run(
        [sys.executable, "-c", _ORPHAN_RUN, str(data)],
        cwd=PROJECT_DIR,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    left = json.loads(done.stdout.strip().splitlines()[-1])
    # then the reader notices, stops, and removes its exchange directory
    deadline = time.monotonic() + 30
    while _running(left["reader"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(left["reader"])
    assert not Path(left["exchange"]).exists()


def test_the_reader_prepares_its_pieces_without_the_cyclic_collector(tmp_path):
    """The reader process makes and pickles thousands of rows a piece, which the collector would
    walk again and again (bench/README.md): no collection runs while it reads, and the collector
    is on again when it is done. Run here in this process, as the spawned process runs it."""
    import gc
    import queue
    import threading

    from salesloop.intake.imports.files import file_inspect
    from salesloop.intake.imports.mapping import mapping_guess
    from salesloop.intake.imports.reader import END, Piece, piece_load, reader_main

    data = tmp_path / "leads.csv"
    data.write_bytes(csv_bytes([[f"客户{i}", f"138162{i:05d}", "", "", "", "", ""] for i in range(3_000)]))
    shape = file_inspect(data, name=data.name, size=data.stat().st_size)
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    collections: list[int] = []

    class Handed(queue.Queue):
        """What the run would take, and how many collections had run when each was handed over."""

        def put(self, item, block=True, timeout=None):
            super().put((item, len(collections)), block, timeout)

    out, mapping, stop = Handed(), mapping_guess(shape.headers), threading.Event()

    def collected(phase, info):
        if phase == "start":
            collections.append(info["generation"])

    assert gc.isenabled()
    gc.callbacks.append(collected)
    try:
        reader_main(str(data), shape, mapping, 0, 500, str(exchange), out, stop)
    finally:
        gc.callbacks.remove(collected)
    handed = []
    while not out.empty():
        handed.append(out.get())
    items = [item for item, _ in handed]
    assert items[-1] == END and all(isinstance(item, Piece) for item in items[:-1])
    assert sum(piece_load(item).rows for item in items[:-1]) == 3_000
    assert [seen for _, seen in handed] == [0] * len(handed)  # none until it handed over the end
    assert gc.isenabled()


def test_a_piece_crosses_from_the_reader_as_the_candidates_it_prepared(tmp_path):
    """The reader writes its candidates as plain tuples (`piece_dump`); the run gets them back as
    candidates, equal to those the reader prepared, its rejected rows with them."""
    from salesloop.intake.imports.files import file_inspect
    from salesloop.intake.imports.mapping import mapping_guess
    from salesloop.intake.imports.pipeline import prepared_pieces
    from salesloop.intake.imports.reader import Piece, piece_dump, piece_load
    from salesloop.intake.imports.rows import Candidate

    data = tmp_path / "leads.csv"
    rows = [[f"客户{i}", f"138162{i:05d}", f"公司{i % 3}", "", "", "", ""] for i in range(40)]
    data.write_bytes(csv_bytes([*rows, ["错", "123", "", "", "", "", ""]]))
    shape = file_inspect(data, name=data.name, size=data.stat().st_size)
    [prepared] = prepared_pieces(data, shape, mapping_guess(shape.headers), 0, 100)
    target = tmp_path / "0000000.pickle"
    target.write_bytes(piece_dump(prepared))

    loaded = piece_load(Piece(str(target)))

    assert not target.exists()  # taken: the exchange directory holds only pieces not yet read
    assert (loaded.rows, loaded.rejects) == (41, prepared.rejects) and len(loaded.rejects) == 1
    assert loaded.candidates == prepared.candidates
    assert {type(candidate) for candidate in loaded.candidates} == {Candidate}
    assert (loaded.candidates[1].phone, loaded.candidates[1].company) == ("+8613816200001", "公司1")
