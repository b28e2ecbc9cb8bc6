"""The life of an import job (SPEC C1.5): upload → preview → start → run in the background → report.

Who imports: regional managers, directors and administrators — an import creates leads in every
region's pool at once, which is not a rep's call. A job is seen by whoever uploaded it, and by
directors and administrators.

The run takes the file in chunks; each chunk is one transaction holding its leads, touches,
rejected rows, the routing of its new leads *and* the job's progress, so a job that stopped (a
worker restart, a deploy) is started again from the first row not done and never imports a row
twice. The first chunk has CHUNK_ROWS rows; the next ones are sized from the rate so far to take
about CHUNK_SECONDS (never more than CHUNK_ROWS_MAX rows): the progress bar moves every couple of
polls, and a fast run pays the per-chunk costs (look-ups, routing's reading of loads and
rotations, the commit) on 20 chunks of a million-row file rather than 100.

Deliberate differences from the per-event path, for speed: no `lead.create` audit entry per lead
(the job writes one `import.run` entry, and each lead's first move names its job and row in
`filled`), and no fuzzy merge suggestions for imported leads (identity by phone, WeCom id and
e-mail still applies to every row).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.db import DatabaseError, IntegrityError, connection, transaction

from salesloop.accounts.models import User
from salesloop.core import clock
from salesloop.core.audit import audit_record
from salesloop.core.interpreter import cyclic_gc_paused, switch_interval
from salesloop.core.roles import Role
from salesloop.intake.imports.bulk import BulkWriter
from salesloop.intake.imports.engine import (
    ChunkNamed,
    ChunkPlan,
    ImportContext,
    ImportTakenOver,
    PreparedChunk,
    chunk_announce,
    chunk_plan,
    chunk_prepare,
    chunk_write,
    ids_wanted,
)
from salesloop.intake.imports.files import FileShape, ImportFileError, file_inspect, rows_head, size_check
from salesloop.intake.imports.mapping import mapping_clean, mapping_guess, mapping_problem
from salesloop.intake.imports.models import ImportJob, ImportStatus
from salesloop.intake.imports.pipeline import PreparedRows
from salesloop.intake.imports.rows import Candidate
from salesloop.intake.models import Source, SourceKind
from salesloop.notify.services import notification_send
from salesloop.routing.services import BatchRouter

log = logging.getLogger(__name__)

CHUNK_ROWS = 10_000  # the first chunk, the smallest, and the unit chunk sizes are multiples of
CHUNK_ROWS_MAX = 50_000
CHUNK_SECONDS = 3.0  # what a chunk should take: the progress bar (polled every second) keeps moving
PREVIEW_ROWS = 20
CHUNK_ATTEMPTS = 3
IMPORT_SWITCH_INTERVAL = 0.0005  # seconds: see `core.interpreter.switch_interval`
IMPORT_SOURCE_SLUG = "bulk-import"
IMPORT_SOURCE_NAME = "批量导入"
IMPORTER_ROLES = frozenset({Role.MANAGER, Role.DIRECTOR, Role.ADMIN})
STARTABLE = frozenset({ImportStatus.UPLOADED, ImportStatus.PREVIEWED, ImportStatus.FAILED})
# A running job whose progress has not moved for this long lost its worker (each chunk takes a few
# seconds, routing included): it may be started again, and carries on from its first row not done.
STALLED_AFTER = dt.timedelta(minutes=10)


def may_import(user: Any) -> bool:
    return bool(user.is_superuser) or user.role in IMPORTER_ROLES


def _require_importer(actor: Any) -> None:
    if actor is not None and not may_import(actor):
        raise PermissionDenied("regional managers, directors and administrators import leads")


# ---- upload and preview ---------------------------------------------------------------------


def import_job_create(
    *, actor: User | None, upload: File, name: str, mapping: Any = None, require_identity: bool = False
) -> ImportJob:
    """Store the file under MEDIA_ROOT/imports/, find out how to read it, guess (or take) the
    column mapping. Raises ImportFileError for a file that cannot be imported as it is, and with
    `require_identity` also when no column names a person (the caller means to start at once)."""
    _require_importer(actor)
    size = upload.size or 0
    size_check(size)  # before copying 200 MB+ into the media directory
    job = ImportJob(original_name=(name or "import")[:255], size_bytes=size, created_by=actor)
    job.file.save(name or "import.csv", upload, save=False)
    try:
        shape = file_inspect(Path(job.file.path), name=name, size=size)
        job.format, job.encoding, job.delimiter = shape.format, shape.encoding, shape.delimiter
        job.header_row, job.headers, job.rows_total = shape.header_row, shape.headers, shape.rows_total
        job.mapping = (
            mapping_guess(shape.headers) if mapping is None else mapping_clean(shape.headers, mapping)
        )
        problem = mapping_problem(job.mapping)
        if problem and require_identity:
            raise ImportFileError(f"{problem}. The columns are: {', '.join(shape.headers)}", status=422)
    except (ImportFileError, ValidationError):
        job.file.delete(save=False)
        raise
    job.status = ImportStatus.PREVIEWED
    job.save()
    return job


@dataclass(frozen=True)
class PreviewRow:
    row_number: int
    outcome: str  # new | touch | duplicate | rejected
    reason: str
    cells: list[str]
    candidate: Candidate | None
    lead_id: int | None


def import_preview(*, job: ImportJob, rows: int = PREVIEW_ROWS) -> list[PreviewRow]:
    """The first rows as the run would read and decide them, against the database as it is now.
    Reads only: nothing is written, not even the job."""
    head = rows_head(Path(job.file.path), job, rows)
    ctx = ImportContext(job, source_id=None, pipeline_id=_pipeline_id(None))
    plan = chunk_plan(chunk_prepare(head, ctx.normaliser), ctx, outcomes=True)
    cells_by_row = dict(head)
    return [
        PreviewRow(
            row_number=outcome.row_number,
            outcome=outcome.outcome,
            reason=outcome.reason,
            cells=cells_by_row[outcome.row_number],
            candidate=outcome.candidate,
            lead_id=outcome.lead_id,
        )
        for outcome in plan.outcomes
    ]


@transaction.atomic
def import_mapping_set(*, actor: User, job: ImportJob, mapping: Any) -> ImportJob:
    """Change which column is which, until the run has begun."""
    _require_importer(actor)
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if job.status not in {ImportStatus.UPLOADED, ImportStatus.PREVIEWED} or job.rows_done:
        raise ValidationError({"mapping": "the import has begun; its mapping can no longer change"})
    job.mapping = mapping_clean(job.headers, mapping)
    job.status = ImportStatus.PREVIEWED
    job.save(update_fields=["mapping", "status"])
    return job


# ---- start and run --------------------------------------------------------------------------


def import_start(
    *, actor: User | None, job: ImportJob, mapping: Any = None, enqueue: bool = True
) -> ImportJob:
    """Queue the run. A failed or stalled job starts again from its first row not done."""
    from salesloop.intake.imports.tasks import import_run_task

    _require_importer(actor)
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        stalled = job.status == ImportStatus.RUNNING and job.updated_at < clock.now() - STALLED_AFTER
        if job.status not in STARTABLE and not stalled:
            raise ValidationError({"status": f"the import is {job.status}; it cannot be started again"})
        if mapping is not None:
            if job.rows_done:
                raise ValidationError({"mapping": "the import has begun; its mapping can no longer change"})
            job.mapping = mapping_clean(job.headers, mapping)
        problem = mapping_problem(job.mapping)
        if problem:
            raise ValidationError({"mapping": problem})
        job.status, job.error, job.finished_at = ImportStatus.QUEUED, "", None
        job.save(update_fields=["mapping", "status", "error", "finished_at"])
        if enqueue:
            # On commit: a database worker must find the job queued, not as it was before.
            transaction.on_commit(lambda: import_run_task.enqueue(job.pk))
    job.refresh_from_db()
    return job


class ChunkSizer:
    """How many rows the next chunk takes: CHUNK_ROWS first, then what the rate so far does in
    CHUNK_SECONDS, rounded down to a multiple of CHUNK_ROWS, within [CHUNK_ROWS, CHUNK_ROWS_MAX]."""

    def __init__(self) -> None:
        self.unit = CHUNK_ROWS
        self.largest = max(CHUNK_ROWS_MAX, CHUNK_ROWS)
        self.rows = CHUNK_ROWS
        self._done = 0
        self._seconds = 0.0

    def record(self, rows: int, seconds: float) -> None:
        self._done += rows
        self._seconds += seconds
        if self._seconds > 0:
            fitting = int(self._done / self._seconds * CHUNK_SECONDS) // self.unit * self.unit
            self.rows = min(max(fitting, self.unit), self.largest)


@dataclass
class RunTimings:
    """Where a run's time went, in seconds: waiting for prepared rows (reading and normalising
    run in a reader process alongside), planning (look-ups and decisions), writing, routing,
    committing. Kept in the run's audit entry; `salesloop import --json` prints it."""

    read_wait: float = 0.0
    plan: float = 0.0
    write: float = 0.0
    route: float = 0.0
    commit: float = 0.0
    # the planning of chunks done while the chunk before committed (`PlanAhead`): not in the
    # wall time unless `plan` shows the wait for it
    planned_ahead: float = 0.0
    chunks: int = 0
    chunks_planned_ahead: int = 0
    retries: int = 0  # chunks written again after a concurrent write collided with them
    largest_chunk: int = 0
    routed: int = 0
    reader_process: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            key: round(value, 2) if isinstance(value, float) else value
            for key, value in self.__dict__.items()
        }


def import_run(*, job_id: int, timings: RunTimings | None = None) -> ImportJob:
    """The run (a background task): every chunk planned, written, routed and counted in one
    transaction. `timings`, if given, is filled in as the run goes."""
    # Claim the job: of two workers handed the same job, one runs it.
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.RUNNING, updated_at=clock.now()
    )
    job = ImportJob.objects.get(pk=job_id)
    if not claimed:
        return job
    began = time.monotonic()
    rows_before = job.rows_done
    if job.started_at is None:
        job.started_at = clock.now()
        job.save(update_fields=["started_at"])
    timings = timings if timings is not None else RunTimings()
    try:
        source = import_source()
        ctx = ImportContext(job, source_id=source.pk, pipeline_id=_pipeline_id(source))
        writer = BulkWriter(connection)
        shape = FileShape(
            job.format, job.encoding, job.delimiter, job.header_row, job.headers, job.rows_total
        )
        sizer = ChunkSizer()
        with (
            switch_interval(IMPORT_SWITCH_INTERVAL),
            cyclic_gc_paused(),
            writer.session(),
            PreparedRows(
                Path(job.file.path),
                shape,
                job.mapping,
                skip=job.rows_done,
                rows_left=job.rows_total - job.rows_done,
                unit=sizer.unit,
            ) as prepared_rows,
            PlanAhead(prepared_rows, ctx) as ahead,
        ):
            timings.reader_process = prepared_rows.in_process
            waited = time.monotonic()
            prepared, plan = ahead.take(sizer.rows), None
            timings.read_wait += time.monotonic() - waited
            while prepared is not None:
                started = time.monotonic()
                _chunk_commit(prepared, ctx, writer, timings, plan=plan, ahead=ahead, next_rows=sizer.rows)
                sizer.record(prepared.rows, time.monotonic() - started)
                timings.chunks += 1
                timings.largest_chunk = max(timings.largest_chunk, prepared.rows)
                finished = [prepared, plan]
                waited = time.monotonic()
                following = ahead.result()
                if following is None:
                    prepared, plan = ahead.take(sizer.rows), None
                    timings.read_wait += time.monotonic() - waited
                else:
                    prepared, plan = following
                    timings.plan += time.monotonic() - waited
                    timings.chunks_planned_ahead += plan is not None
                ahead.release(finished)
            timings.planned_ahead = ahead.seconds
    except ImportTakenOver:
        log.warning("import %s: another worker has taken the job over; this one stops", job_id)
        return ImportJob.objects.get(pk=job_id)
    except Exception as exc:
        log.exception("import %s failed", job_id)
        job.refresh_from_db()
        job.status, job.error, job.finished_at = ImportStatus.FAILED, _readable(exc), clock.now()
        job.save(update_fields=["status", "error", "finished_at"])
        _audit_run(job, seconds=time.monotonic() - began, rows=job.rows_done - rows_before, timings=timings)
        return job
    job.refresh_from_db()
    job.status, job.finished_at = ImportStatus.DONE, clock.now()
    job.rows_total = job.rows_done  # exact now; the upload counted an xlsx by its stated size
    job.save(update_fields=["status", "finished_at", "rows_total"])
    _audit_run(job, seconds=time.monotonic() - began, rows=job.rows_done - rows_before, timings=timings)
    return job


def _readable(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return str(exc) or type(exc).__name__


def _chunk_commit(
    prepared: PreparedChunk,
    ctx: ImportContext,
    writer: BulkWriter,
    timings: RunTimings,
    *,
    plan: ChunkPlan | None = None,
    ahead: PlanAhead | None = None,
    next_rows: int = 0,
) -> None:
    """Plan (unless `plan` was made ahead), write and route one chunk; then, while it makes its
    leads' derived rows and commits, the next `next_rows` rows are taken and planned `ahead`.
    Someone else may create one of its people between our look-up and our insert (a webhook of
    the same phone): the unique constraint refuses the insert, the whole chunk rolls back, and a
    new plan sees that person as known."""
    for attempt in range(1, CHUNK_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                moment = time.monotonic()
                writer.chunk_begin()
                if plan is None or attempt > 1:
                    plan = chunk_plan(prepared, ctx)
                moment = _lap(timings, "plan", moment)
                router = imported_leads_router(plan, ctx)
                moment = _lap(timings, "route", moment)
                known = None if ahead is None else functools.partial(ahead.start, next_rows)
                written = chunk_write(plan, ctx, writer, router, known=known)
                _touches_notify(plan, ctx)
                if router is not None:
                    router.notify()
                moment = _lap(timings, "write", moment)
                chunk_announce(written, ctx)  # the derived rows, under their owners
                moment = _lap(timings, "write", moment)
                timings.route += written.route_seconds
                timings.write -= written.route_seconds
            _lap(timings, "commit", moment)
        except IntegrityError:
            if ahead is not None:
                ahead.drop()  # planned with what this chunk would have made known
            if attempt == CHUNK_ATTEMPTS:
                raise
            timings.retries += 1
            log.info(
                "import %s: the chunk after row %s collided with a concurrent write; retrying",
                ctx.job.pk,
                ctx.rows_done,
            )
            continue
        ctx.remember(plan, written.contact_ids)
        if router is not None:
            ctx.router_carry = router  # committed: the next chunk may carry its loads over
        timings.routed += len(written.owners)
        return


class PlanAhead:
    """The next chunk taken and planned in a thread of its own, on a connection of its own, while
    the chunk before makes its leads' derived rows (funnel and indicator rows, set-based SQL) and
    commits. That is the database's work, done without the GIL (SQLite's commit alone, writing
    the chunk's pages out, is ~15% of a million-row run, about as long as planning, measured), so
    planning — look-ups and decisions — costs the run little while it lasts.

    That connection reads what is committed, which may or may not include the committing chunk
    yet, so the chunk is planned with what the chunk before made known (`engine.ChunkNamed`) —
    the same plan either way. A chunk that does not commit drops the plan made after it and keeps
    the rows taken; the chunk is planned again in its own transaction, as is one whose planning
    failed here. Off inside a transaction (a test's): another connection would not see what that
    holds, and the chunks are planned in their own transactions, one after the other.

    On PostgreSQL the chunk's ids are drawn here too (`BulkWriter.ids_draw`): a sequence hands an
    id out once whatever becomes of the transaction, so a plan that is dropped leaves a gap in the
    ids, nothing more; a chunk planned again draws new ones. Drawing gives the drawing transaction
    an id, which routing would take for someone else's write and count the loads again for; the
    chunk's router is told it is the run's own (`BatchRouter.begin`'s `also_ours`).

    Sizes: a chunk planned ahead is sized from the chunks before the one committing."""

    def __init__(self, rows: PreparedRows, ctx: ImportContext) -> None:
        self._rows, self._ctx = rows, ctx
        self._pool: ThreadPoolExecutor | None = None
        if not connection.in_atomic_block:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-plan")
        self._future: Future[tuple[PreparedChunk | None, ChunkPlan | None]] | None = None
        self._kept: list[PreparedChunk | None] = []  # rows taken for a plan that was dropped
        self._configured = False
        self._drawer: BulkWriter | None = None  # draws a planned chunk's ids, on this thread
        self.seconds = 0.0

    def __enter__(self) -> PlanAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is None:
            return
        if self._future is not None:
            self._future.exception()  # wait; a failure of its own was already raised, or is moot now
            self._future = None
        self._pool.submit(_connection_close).result()  # the thread's own
        self._pool.shutdown()

    def take(self, rows: int) -> PreparedChunk | None:
        if self._kept:
            return self._kept.pop()
        return self._rows.take(rows)

    def start(self, rows: int, after: ChunkNamed) -> None:
        if self._pool is not None:
            self._future = self._pool.submit(self._plan, rows, after)

    def result(self) -> tuple[PreparedChunk | None, ChunkPlan | None] | None:
        """(the next chunk or None at the end of the file, its plan or None), if it was started."""
        future, self._future = self._future, None
        return None if future is None else future.result()

    def release(self, finished: list[Any]) -> None:
        """The committed chunk's rows and plan (`finished`, which the caller holds no other way),
        freed on this thread while the writer goes on: a chunk is a few million small objects,
        and freeing them on the writer's thread took ~2.5% of a million-row run (py-spy)."""
        if self._pool is not None:
            self._pool.submit(finished.clear)
        else:
            finished.clear()

    def drop(self) -> None:
        """The chunk before did not commit: keep the rows, not the plan."""
        following = self.result()
        if following is not None:
            self._kept.append(following[0])

    def _plan(self, rows: int, after: ChunkNamed) -> tuple[PreparedChunk | None, ChunkPlan | None]:
        began = time.monotonic()
        prepared = self.take(rows)
        if prepared is None:
            return None, None
        try:
            if not self._configured and connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET jit = off")  # as `BulkWriter.chunk_begin` says why
            self._configured = True
            plan = chunk_plan(prepared, self._ctx, after=after)
            if connection.vendor == "postgresql":
                # its ids drawn here too, off the writer's path (`BulkWriter.ids_draw`)
                if self._drawer is None:
                    self._drawer = BulkWriter(connection)
                with transaction.atomic():
                    plan.ids = self._drawer.ids_draw(ids_wanted(plan))
                    plan.ids_xid = self._drawer.transaction_id()
            return prepared, plan
        except DatabaseError:
            log.warning("import %s: planning ahead failed; planned again", self._ctx.job.pk, exc_info=True)
            return prepared, None
        finally:
            self.seconds += time.monotonic() - began


def _connection_close() -> None:
    connection.close()  # the calling thread's connection


def _lap(timings: RunTimings, phase: str, since: float) -> float:
    now = time.monotonic()
    setattr(timings, phase, getattr(timings, phase) + now - since)
    return now


def _touches_notify(plan: ChunkPlan, ctx: ImportContext) -> None:
    """回流 by import: each owner hears once per lead, however many rows name its person."""
    owned = {lead_id: value for lead_id, value in plan.touched_leads.items() if value[0] is not None}
    if not owned:
        return
    owners = User.objects.in_bulk({owner_id for owner_id, _, _ in owned.values()})
    for lead_id, (owner_id, title, row_number) in owned.items():
        notification_send(
            user=owners[owner_id],
            kind="lead.touch",
            title=f"线索回流：{title}",
            body=f"{title} 出现在批量导入「{ctx.job.original_name}」第 {row_number} 行。",
            link=f"/leads/{lead_id}/",
        )


def imported_leads_router(plan: ChunkPlan, ctx: ImportContext) -> BatchRouter | None:
    """What routes the leads a chunk creates (SPEC C8), in the chunk's transaction, as they are
    written (`chunk_write`): the same engine and traces as a webhook's lead, in a fixed number of
    queries. None — no published rule set, or nothing new — and they wait in their region's pool.
    The loads the last committed chunk left are carried over while they still hold."""
    if not plan.leads:
        return None
    return BatchRouter.begin(
        now=clock.now(),
        actor=ctx.job.created_by,
        carry=ctx.router_carry,
        tracked=True,
        also_ours=frozenset([plan.ids_xid]) if plan.ids_xid is not None else frozenset(),
    )


def import_source() -> Source:
    """The source touches by import are recorded on (kind api, disabled: it has no endpoint of its
    own — nothing may push to /hooks/bulk-import)."""
    from salesloop.intake.services import source_create

    source = Source.objects.filter(slug=IMPORT_SOURCE_SLUG).first()
    if source is not None:
        return source
    try:
        with transaction.atomic():
            return source_create(
                actor=None,
                kind=SourceKind.API,
                name=IMPORT_SOURCE_NAME,
                slug=IMPORT_SOURCE_SLUG,
                enabled=False,
            )
    except (IntegrityError, ValidationError):  # another job created it a moment ago
        return Source.objects.get(slug=IMPORT_SOURCE_SLUG)


def _pipeline_id(source: Source | None) -> int:
    from salesloop.pipeline.selectors import pipeline_default

    if source is not None and source.pipeline_id:
        return source.pipeline_id
    return pipeline_default().pk


def _audit_run(job: ImportJob, *, seconds: float, rows: int, timings: RunTimings) -> None:
    audit_record(
        actor=job.created_by,
        action="import.run",
        target=job,
        after={
            "file": job.original_name,
            "status": job.status,
            "mapping": dict(zip(job.headers, job.mapping, strict=False)),
            "rows_total": job.rows_total,
            "rows_done": job.rows_done,
            "created": job.created,
            "touches": job.touches,
            "duplicates_in_file": job.duplicates_in_file,
            "rejected": job.rejected,
            "seconds": round(seconds, 2),
            "rows_per_second": round(rows / seconds) if seconds > 0 else None,
            "routed": timings.routed,
            "phases": timings.as_dict(),
            "error": job.error,
        },
    )
