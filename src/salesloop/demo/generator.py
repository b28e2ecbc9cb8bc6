"""The deterministic demo organisation and lead generator behind `salesloop seed`.

Same seed, same database state → same users, customers, contacts, phones, leads and stage
histories (relative to `clock.now()`, which tests pin). Leads are generated in chunks, each from its
own random stream (`demo.rows`), and appended with bulk inserts (`demo.bulk`): the per-record
services would validate and audit a million rows one by one. What the services guarantee is
reproduced and checked by tests/demo instead: every lead enters the first stage as its first move,
every move carries a valid `stage_move` explanation, and the lead row equals the projection of its
moves. The run as a whole writes one audit entry.
"""

from __future__ import annotations

import contextlib
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connection, transaction

from salesloop.core import clock
from salesloop.core.audit import audit_record
from salesloop.crm.models import Contact, Customer, Lead
from salesloop.demo.bulk import BulkWriter, table_spec
from salesloop.demo.org import DEMO_PASSWORD, demo_logins, demo_org_ensure
from salesloop.demo.rows import (
    CONTACT_COLUMNS,
    CUSTOMER_COLUMNS,
    LEAD_COLUMNS,
    MOVE_COLUMNS,
    Chunk,
    LeadRowsPlan,
    chunk_generate,
    identities_make_unique,
)
from salesloop.pipeline.models import StageMove

__all__ = ["DEMO_PASSWORD", "SeedResult", "demo_logins", "seed_run"]

CHUNK_SIZE = 10_000

Ids = dict[type[Any], int]


@dataclass
class SeedResult:
    seed: int
    leads: int = 0
    customers: int = 0
    contacts: int = 0
    moves: int = 0
    users_created: int = 0
    identities_redrawn: int = 0
    first_lead_id: int | None = None
    last_lead_id: int | None = None
    seconds: float = 0.0
    rollup_seconds: float = 0.0
    outcomes: dict[str, int] = field(default_factory=lambda: {"open": 0, "won": 0, "lost": 0})

    @property
    def leads_per_second(self) -> float:
        return self.leads / self.seconds if self.seconds else 0.0

    def counts(self) -> dict[str, int]:
        return {
            "leads": self.leads,
            "customers": self.customers,
            "contacts": self.contacts,
            "stage_moves": self.moves,
            "users_created": self.users_created,
            **{f"leads_{status}": n for status, n in self.outcomes.items()},
        }

    def add(self, chunk: Chunk) -> None:
        if chunk.leads:
            if self.first_lead_id is None:
                self.first_lead_id = chunk.leads[0][0]
            self.last_lead_id = chunk.leads[-1][0]
        self.leads += len(chunk.leads)
        self.customers += len(chunk.customers)
        self.contacts += len(chunk.contacts)
        self.moves += len(chunk.moves)
        for status, n in chunk.outcomes.items():
            self.outcomes[status] += n


class _ChunkSource:
    """Generates the next chunk on a background thread while the database stores this one.

    Generation is pure Python. On PostgreSQL storing mostly waits on the server (index and deferred
    foreign-key work at commit), so on two cores the two overlap: a third faster. On SQLite the
    insert loop itself runs in this process and drops and retakes the GIL around every row, so a
    busy second thread slows it down more than it gains; there the chunks are made in turn.

    A chunk depends on the ids it starts at, which the thread predicts from the chunk before; if
    another writer took ids meanwhile, the chunk is generated again for the real ids — the output
    is what it would have been without the thread — and reading ahead stops.
    """

    def __init__(
        self,
        plan: LeadRowsPlan,
        *,
        seed: int,
        existing: int,
        leads: int,
        chunk_size: int,
        first_ids: Ids,
        ts: Callable[[int], str],
        read_ahead: bool,
    ) -> None:
        self.plan = plan
        self.seed = seed
        self.existing = existing
        self.leads = leads
        self.chunk_size = chunk_size
        self.ts = ts
        self._ahead: queue.Queue[tuple[int, Ids, Chunk] | BaseException] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if read_ahead:
            self._thread = threading.Thread(target=self._produce, args=(dict(first_ids),), daemon=True)
            self._thread.start()
        else:
            self._stop.set()

    def chunks(self) -> list[tuple[int, int, int]]:
        """(chunk number, index of its first lead in this run, lead count) of every chunk."""
        return [
            (number, first, min(self.chunk_size, self.leads - first))
            for number, first in enumerate(range(0, self.leads, self.chunk_size))
        ]

    def generate(self, number: int, first: int, count: int, ids: Ids) -> Chunk:
        rng = random.Random(f"salesloop-demo:{self.seed}:{self.existing}:{number}")
        return chunk_generate(
            self.plan, rng, ids=ids, first_index=first, count=count, batch_total=self.leads, ts=self.ts
        )

    def _produce(self, ids: Ids) -> None:
        try:
            for number, first, count in self.chunks():
                chunk = self.generate(number, first, count, ids)
                while not self._stop.is_set():
                    try:
                        self._ahead.put((number, ids, chunk), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
                ids = {
                    Customer: ids[Customer] + count,
                    Contact: ids[Contact] + count,
                    Lead: ids[Lead] + count,
                    StageMove: ids[StageMove] + len(chunk.moves),
                }
        except BaseException as exc:  # handed over to the caller, which raises it
            self._ahead.put(exc)

    def get(self, number: int, first: int, count: int, ids: Ids) -> Chunk:
        """Chunk `number`, starting at `ids` — the ids the database really has now."""
        if not self._stop.is_set():
            item = self._ahead.get()
            if isinstance(item, BaseException):
                raise item
            ahead_number, ahead_ids, chunk = item
            if ahead_number == number and ahead_ids == ids:
                return chunk
            self.close()
        return self.generate(number, first, count, ids)

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            self._ahead.get_nowait()  # unblock a waiting put
        if self._thread is not None:
            self._thread.join(timeout=5)


def seed_run(
    *,
    seed: int = 42,
    leads: int = 5000,
    chunk_size: int = CHUNK_SIZE,
    progress: Callable[[int, int, float], None] | None = None,
    read_ahead: bool | None = None,
    rework: float = 0.0,
) -> SeedResult:
    """Ensure the demo organisation exists, then append `leads` generated leads.

    The random streams are keyed by the seed and by how many leads the database already holds, so
    a second run adds different leads — and the same ones for the same starting point.
    `progress(done, total, seconds)` is called after each chunk. Each chunk is its own transaction:
    an interrupted run keeps the chunks it finished. `read_ahead` (default: on PostgreSQL only)
    generates the next chunk on a thread while the database stores this one; the data is the same.
    `rework` makes busier stage histories (demo.history.stage_history; benchmarks of the funnel).
    """
    started = time.perf_counter()
    org = demo_org_ensure()
    result = SeedResult(seed=seed, users_created=org.users_created)
    plan = LeadRowsPlan(org=org, now=clock.now(), seed=seed, rework=rework)
    existing = Lead.objects.count()
    salt = f"salesloop-demo:{seed}:{existing}"
    writer = BulkWriter(
        connection,
        [
            table_spec(Customer, CUSTOMER_COLUMNS, connection),
            table_spec(Contact, CONTACT_COLUMNS, connection),
            table_spec(Lead, LEAD_COLUMNS, connection),
            table_spec(StageMove, MOVE_COLUMNS, connection),
        ],
    )
    customers, contacts, lead_rows, moves = writer.specs
    source = _ChunkSource(
        plan,
        seed=seed,
        existing=existing,
        leads=leads,
        chunk_size=chunk_size,
        first_ids=writer.next_ids(),
        ts=writer.timestamp,
        read_ahead=connection.vendor == "postgresql" if read_ahead is None else read_ahead,
    )
    try:
        for number, first, count in source.chunks():
            with transaction.atomic():
                writer.lock()
                chunk = source.get(number, first, count, writer.next_ids())
                try:
                    # Generated phones never collide with each other; one from intake may. Let the
                    # unique index find out (cheaper than looking up every number first).
                    with transaction.atomic():
                        writer.insert(contacts, chunk.contacts)
                except IntegrityError:
                    result.identities_redrawn += identities_make_unique(chunk, salt=salt)
                    writer.insert(contacts, chunk.contacts)
                writer.insert(customers, chunk.customers)
                writer.insert(lead_rows, chunk.leads)
                writer.insert(moves, chunk.moves)
                writer.after_chunk()
            result.add(chunk)
            if progress is not None:
                progress(result.leads, leads, time.perf_counter() - started)
    finally:
        source.close()
    writer.finish()
    result.seconds = time.perf_counter() - started
    if result.first_lead_id is not None:
        # The funnel rollups (C5) of the new leads, replayed from their moves; timed apart so the
        # seed rate stays comparable with earlier runs.
        from salesloop.insights.funnel_rollup import funnel_rollup_add_leads

        rollup_started = time.perf_counter()
        with transaction.atomic():
            funnel_rollup_add_leads(first_id=result.first_lead_id, last_id=result.last_lead_id)
        result.rollup_seconds = time.perf_counter() - rollup_started
    audit_record(
        actor=None,
        action="demo.seed",
        target_type="demo",
        target_id=f"seed-{seed}",
        after={
            "seed": seed,
            "counts": result.counts(),
            "lead_ids": [result.first_lead_id, result.last_lead_id],
            "existing_leads": existing,
            "identities_redrawn": result.identities_redrawn,
        },
    )
    return result
