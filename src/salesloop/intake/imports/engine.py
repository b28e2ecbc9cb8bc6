"""A chunk of an import: plan it (read-only), then write it (a few bulk statements).

Planning applies the per-event rules of `intake.services` to a few thousand rows at once, with a
fixed number of queries whatever the chunk's size:

- identity (SPEC C1.4): a row's phone, WeCom id or e-mail names a person; the known person with the
  lowest id wins, as `_contact_find` decides one event at a time;
- a person this file has already named (created or touched by an earlier row) makes the row a
  duplicate within the file: counted apart, recorded as a touch on that person's lead;
- a person known before the import, with an open lead, makes the row a touch (回流) on it; the
  lead's owner hears of it once per lead;
- anyone else becomes a customer (an existing one with the same `company_key`, if there is one), a
  contact and a lead in the region pool, entering the first stage with its StageMove and
  explanation, like `crm.services.lead_create`.

The plan refers to records not written yet by position (`~index`, a negative int), so writing
needs no round trip per row. The preview is a plan that is never written.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import threading
import time
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import F

from salesloop.accounts.models import Province, Region
from salesloop.core import clock
from salesloop.crm import signals
from salesloop.crm.models import Channel, Contact, Customer, Lead, LeadStatus, company_key
from salesloop.intake.imports.bulk import BulkWriter, Table, moment, table
from salesloop.intake.imports.lookups import contacts_by, customers_by_key, leads_of
from salesloop.intake.imports.models import ImportJob, ImportRejectedRow
from salesloop.intake.imports.rows import Candidate, Rejection, RowNormaliser
from salesloop.intake.models import EventStatus, InboundEvent
from salesloop.pipeline.models import Stage, StageMove
from salesloop.pipeline.services import entry_explanation_json
from salesloop.routing.engine import LeadFacts
from salesloop.routing.loads import loads_add, quarter_of
from salesloop.routing.services import BatchRouter

NEW, TOUCH, DUPLICATE, REJECTED = "new", "touch", "duplicate", "rejected"
PERSONAL_SUFFIX = "（个人）"  # as intake.services names the customer of a person without a company


@dataclass
class RowOutcome:
    row_number: int
    outcome: str  # new | touch | duplicate | rejected
    reason: str = ""
    candidate: Candidate | None = None
    lead_id: int | None = None  # an existing lead (touch, duplicate of an earlier chunk's row)


@dataclass
class ChunkPlan:
    rows: int = 0
    keep_outcomes: bool = False
    outcomes: list[RowOutcome] = field(default_factory=list)
    customers: list[tuple[str, str, str, str | None, str]] = field(default_factory=list)
    contacts: list[tuple[int, str, str, str, str, str]] = field(default_factory=list)
    # (title, customer ref, contact ref, campaign, region id, amount, note, filled as JSON), and
    # what routing reads of the lead besides: its customer's (province, industry, city)
    leads: list[tuple[str, int, int, str, int | None, Decimal, str, str]] = field(default_factory=list)
    lead_customers: list[tuple[str | None, str, str]] = field(default_factory=list)
    # (row number, lead ref, candidate), and each one's event body and normalised fields as JSON —
    # encoded by the planner (`chunk_plan`, planning ahead in a thread of its own), not by the writer
    touches: list[tuple[int, int, Candidate]] = field(default_factory=list)
    touch_bodies: list[tuple[str, str]] = field(default_factory=list)
    rejects: list[tuple[int, list[str], str]] = field(default_factory=list)
    # leads known before the import that this chunk touched: lead id → (owner id, title, row)
    touched_leads: dict[int, tuple[int | None, str, int]] = field(default_factory=dict)
    touched_contacts: set[int] = field(default_factory=set)
    # ids drawn for its new customers, contacts and leads while it was planned ahead (PostgreSQL,
    # `services.PlanAhead`), by table; None: the writer reserves them
    ids: dict[str, list[int]] | None = None
    ids_xid: int | None = None  # the id of the transaction that drew them, if it got one
    created: int = 0
    touch_count: int = 0
    duplicates: int = 0


# A customer as a plan sees it: (id, or ~position of one the plan creates; province code,
# industry, city).
Known = tuple[int, str | None, str, str]


class ImportTakenOver(Exception):
    """Another worker has run rows of this job since this one started: this one stops."""


class ImportContext:
    """What a job's chunks share: constants read once, and the people this file has named so far
    (an array of contact ids created, a set of known contacts touched — ~8 bytes a created row).

    A resumed job starts with an empty memory: a person its first run created and a later row
    names again is then counted as a touch rather than a duplicate in the file — counted
    differently, never written twice (their identity is in the database)."""

    def __init__(self, job: ImportJob, *, source_id: int | None, pipeline_id: int) -> None:
        self.job = job
        self.actor_id = job.created_by_id
        self.source_id = source_id
        self.normaliser = RowNormaliser(job.headers, job.mapping)
        stage = Stage.objects.filter(pipeline_id=pipeline_id).order_by("position").first()
        if stage is None:
            raise ValueError("the pipeline has no stages")
        self.pipeline_id = pipeline_id
        self.stage_id = stage.pk
        self.region_by_province: dict[str, int | None] = dict(
            Province.objects.values_list("code", "region_id")
        )
        self.region_code: dict[int, str] = dict(Region.objects.values_list("id", "code"))
        self.explanation_json = entry_explanation_json(stage.code, LeadStatus.OPEN)
        self.rows_done = job.rows_done  # as this worker expects it; checked by every chunk
        self.created_contacts = array("q")
        self.touched_contacts: set[int] = set()
        self._tables: dict[str, Table] | None = None
        self.router_carry: BatchRouter | None = None  # the last committed chunk's routing

    def seen(self, contact_id: int) -> bool:
        """Has this file already named the person (an earlier chunk created or touched them)?"""
        if contact_id in self.touched_contacts:
            return True
        position = bisect_left(self.created_contacts, contact_id)
        return position < len(self.created_contacts) and self.created_contacts[position] == contact_id

    def remember(self, plan: ChunkPlan, contact_ids: Iterable[int]) -> None:
        """After the chunk committed: the people it named. Ids are reserved in increasing order,
        so the array stays sorted."""
        self.created_contacts.extend(sorted(contact_ids))
        self.touched_contacts |= plan.touched_contacts
        self.rows_done += plan.rows

    def tables(self) -> dict[str, Table]:
        if self._tables is None:
            self._tables = {
                "customer": table(
                    Customer,
                    ["id", "name", "name_key", "industry", "province_id", "city", "created_at", "updated_at"],
                    connection,
                ),
                "contact": table(
                    Contact,
                    [
                        "id",
                        "customer_id",
                        "name",
                        "title",
                        "phone",
                        "wecom_external_id",
                        "email",
                        "created_at",
                        "updated_at",
                    ],
                    connection,
                ),
                "lead": table(
                    Lead,
                    [
                        "id",
                        "title",
                        "customer_id",
                        "contact_id",
                        "source",
                        "campaign",
                        "region_id",
                        "pipeline_id",
                        "stage_id",
                        "status",
                        "expected_amount",
                        "stage_entered_at",
                        "created_at",
                        "updated_at",
                        "owner_id",
                        "assigned_at",
                    ],
                    connection,
                ),
                "move": table(
                    StageMove,
                    [
                        "lead_id",
                        "to_stage_id",
                        "to_status",
                        "actor_id",
                        "at",
                        "note",
                        "filled",
                        "explanation",
                    ],
                    connection,
                    database_assigns_id=True,
                ),
                "event": table(
                    InboundEvent,
                    [
                        "source_id",
                        "external_id",
                        "received_at",
                        "body",
                        "status",
                        "lead_id",
                        "campaign",
                        "attempts",
                        "processed_at",
                        "normalised",
                        "created_by_id",
                    ],
                    connection,
                    database_assigns_id=True,
                ),
                "reject": table(
                    ImportRejectedRow,
                    ["job_id", "row_number", "raw", "reason"],
                    connection,
                    database_assigns_id=True,
                ),
            }
        return self._tables


# ---- planning -------------------------------------------------------------------------------


@dataclass
class PreparedChunk:
    """A chunk read and checked, before any look-up: what can be done without the database."""

    rows: int
    candidates: list[Candidate]
    rejects: list[tuple[int, list[str], str]]


def chunk_prepare(rows: Sequence[tuple[int, list[str]]], normaliser: RowNormaliser) -> PreparedChunk:
    """Normalise every row. Pure: it runs in the reader process (see `pipeline`)."""
    candidates: list[Candidate] = []
    rejects: list[tuple[int, list[str], str]] = []
    for row_number, cells in rows:
        try:
            candidates.append(normaliser(row_number, cells))
        except Rejection as exc:
            rejects.append((row_number, cells, str(exc)))
    return PreparedChunk(rows=len(rows), candidates=candidates, rejects=rejects)


@dataclass
class ChunkNamed:
    """What a written chunk made known, as its plan's look-ups would find it once it commits: its
    new contacts by identity key, their customers' facts, every lead it created (open, with its
    owner) by its contact, its new customers by company key, and every person it named. The next
    chunk is planned with it on another connection while this one commits (`services.PlanAhead`),
    and that connection may not see the chunk yet."""

    phone: dict[str, int] = field(default_factory=dict)
    wecom: dict[str, int] = field(default_factory=dict)
    email: dict[str, int] = field(default_factory=dict)
    contact_customer: dict[int, Known] = field(default_factory=dict)
    open_lead: dict[int, tuple[int, int | None, str]] = field(default_factory=dict)
    customer_by_key: dict[str, Known] = field(default_factory=dict)
    named: set[int] = field(default_factory=set)


def chunk_named(plan: ChunkPlan, written: ChunkWritten) -> ChunkNamed:
    named = ChunkNamed(named=set(written.contact_ids) | plan.touched_contacts)
    customer_ids, contact_ids = written.customer_ids, written.contact_ids
    for customer_id, (_, key, industry, province, city) in zip(customer_ids, plan.customers, strict=True):
        if key:
            named.customer_by_key.setdefault(key, (customer_id, province, industry or "", city or ""))
    for contact_id, (_, _, _, phone, wecom, email) in zip(contact_ids, plan.contacts, strict=True):
        for by_value, value in ((named.phone, phone), (named.wecom, wecom), (named.email, email)):
            if value:
                by_value.setdefault(value, contact_id)
    for lead_id, lead, (province, industry, city) in zip(
        written.lead_ids, plan.leads, plan.lead_customers, strict=True
    ):
        title, customer, contact = lead[0], lead[1], lead[2]
        contact_id = contact if contact > 0 else contact_ids[~contact]
        named.open_lead[contact_id] = (lead_id, written.owners.get(lead_id), title)
        if contact <= 0:  # a new person: their customer as the look-up would read it
            customer_id = customer if customer > 0 else customer_ids[~customer]
            named.contact_customer[contact_id] = (customer_id, province, industry or "", city or "")
    return named


def chunk_plan(
    prepared: PreparedChunk, ctx: ImportContext, *, outcomes: bool = False, after: ChunkNamed | None = None
) -> ChunkPlan:
    """Decide every row of a chunk, reading the database in at most five queries. With
    `outcomes` (the preview) each row's outcome is kept too. `after`: what the chunk before made
    known, if the database this connection reads may not show it yet."""
    plan = ChunkPlan(rows=prepared.rows, keep_outcomes=outcomes)
    plan.rejects = prepared.rejects
    if outcomes:
        plan.outcomes = [RowOutcome(n, REJECTED, reason=reason) for n, _, reason in prepared.rejects]
    candidates = prepared.candidates
    if not candidates:
        return plan

    phones = {c.phone for c in candidates if c.phone}
    wecoms = {c.wecom for c in candidates if c.wecom}
    emails = {c.email for c in candidates if c.email}
    # The known person of each identity key, one map per kind of key: value → lowest contact id.
    known: tuple[dict[str, int], dict[str, int], dict[str, int]] = ({}, {}, {})
    contact_customer: dict[int, Known] = {}
    for by_value, column, values in zip(
        known, ("phone", "wecom_external_id", "email"), (phones, wecoms, emails), strict=True
    ):
        if values:
            for contact_id, value, customer_id, province, industry, city in contacts_by(column, values):
                contact_customer[contact_id] = (customer_id, province, industry or "", city or "")
                by_value.setdefault(value, contact_id)
    if after is not None:
        for by_value, named_by, values in zip(
            known, (after.phone, after.wecom, after.email), (phones, wecoms, emails), strict=True
        ):
            for value in values & named_by.keys():
                contact_id = named_by[value]
                if value not in by_value or contact_id < by_value[value]:
                    by_value[value] = contact_id
                contact_customer.setdefault(contact_id, after.contact_customer[contact_id])
    open_lead: dict[int, tuple[int, int | None, str]] = {}
    if contact_customer:
        for lead_id, contact_id, owner_id, title, status, merged_into_id in leads_of(list(contact_customer)):
            if status == LeadStatus.OPEN and merged_into_id is None:
                open_lead.setdefault(contact_id, (lead_id, owner_id, title))
    if after is not None:
        # the chunk before created a lead only for a person with nothing open
        open_lead.update((c, after.open_lead[c]) for c in contact_customer.keys() & after.open_lead.keys())

    customer_by_key: dict[str, Known] = {}
    keys = {c.company_key for c in candidates if c.company_key}
    if keys:
        for customer_id, name_key, province_id, industry, city in customers_by_key(keys):
            customer_by_key.setdefault(name_key, (customer_id, province_id, industry or "", city or ""))
    if after is not None:
        for key in keys & after.customer_by_key.keys():
            customer_by_key.setdefault(key, after.customer_by_key[key])

    seen = ctx.seen if after is None else lambda contact_id: contact_id in after.named or ctx.seen(contact_id)
    _decide(plan, candidates, ctx, seen, known, contact_customer, open_lead, customer_by_key)
    plan.touch_bodies = [(candidate.body, candidate.normalised_json) for _, _, candidate in plan.touches]
    if outcomes:
        plan.outcomes.sort(key=lambda outcome: outcome.row_number)
    return plan


def _decide(
    plan: ChunkPlan,
    candidates: list[Candidate],
    ctx: ImportContext,
    seen: Callable[[int], bool],
    known: tuple[dict[str, int], dict[str, int], dict[str, int]],
    contact_customer: dict[int, Known],
    open_lead: dict[int, tuple[int, int | None, str]],
    customer_by_key: dict[str, Known],
) -> None:
    # Identity keys → lead ref (~index) of a person new in this chunk, one map per kind of key.
    new_phone: dict[str, int] = {}
    new_wecom: dict[str, int] = {}
    new_email: dict[str, int] = {}
    known_phone, known_wecom, known_email = known
    new_customer_by_key: dict[str, Known] = {}
    region_by_province = ctx.region_by_province
    job_id = ctx.job.pk
    keep = plan.keep_outcomes
    outcomes = plan.outcomes
    touches = plan.touches
    leads = plan.leads
    lead_customers = plan.lead_customers

    def customer_for(candidate: Candidate) -> Known:
        """(customer ref, province code, industry, city): the company as known, or a new customer."""
        key = candidate.company_key
        if key:
            found = customer_by_key.get(key) or new_customer_by_key.get(key)
            if found is not None:
                return found
        name = candidate.company or f"{candidate.name}{PERSONAL_SUFFIX}"
        if not candidate.company:
            key = company_key(name)
        plan.customers.append((name, key, candidate.industry, candidate.province_code, candidate.city))
        ref = (~(len(plan.customers) - 1), candidate.province_code, candidate.industry, candidate.city)
        if candidate.company and key:
            new_customer_by_key[key] = ref
        return ref

    def lead_new(candidate: Candidate, customer: Known, contact_ref: int) -> int:
        customer_ref, province, industry, city = customer
        # The first move's `filled` says where the lead came from: job, row, and what the old
        # system called it (the extras encoded by the reader, `rows.Candidate`).
        extras = f",{candidate.extras}" if candidate.extras else ""
        filled = f'{{"import_job":{job_id},"row":{candidate.row_number}{extras}}}'
        leads.append(
            (
                candidate.company or candidate.name,
                customer_ref,
                contact_ref,
                candidate.campaign,
                region_by_province.get(province) if province else None,
                candidate.amount,
                candidate.remark,
                filled,
            )
        )
        lead_customers.append((province, industry, city))
        plan.created += 1
        if keep:
            outcomes.append(RowOutcome(candidate.row_number, NEW, candidate=candidate))
        return ~(len(leads) - 1)

    for candidate in candidates:
        phone, wecom, email = candidate.phone, candidate.wecom, candidate.email
        # The person known before this chunk: the lowest contact id any of the row's keys names.
        contact_id = 0
        for value, by_value in ((phone, known_phone), (wecom, known_wecom), (email, known_email)):
            if value:
                found = by_value.get(value)
                if found is not None and (not contact_id or found < contact_id):
                    contact_id = found
        if contact_id:
            lead = open_lead.get(contact_id)
            if lead is not None:
                lead_id, owner_id, title = lead
                if seen(contact_id) or contact_id in plan.touched_contacts:
                    plan.duplicates += 1
                    kind = DUPLICATE
                else:
                    plan.touch_count += 1
                    plan.touched_contacts.add(contact_id)
                    plan.touched_leads.setdefault(lead_id, (owner_id, title, candidate.row_number))
                    kind = TOUCH
                if keep:
                    outcomes.append(
                        RowOutcome(candidate.row_number, kind, candidate=candidate, lead_id=_known(lead_id))
                    )
                touches.append((candidate.row_number, lead_id, candidate))
                continue
            # Known, but nothing open: a new lead for the person, on their customer.
            known_customer = contact_customer[contact_id]
            customer = known_customer if known_customer[0] else customer_for(candidate)
            lead_ref = lead_new(candidate, customer, contact_id)
            plan.touched_contacts.add(contact_id)
            open_lead[contact_id] = (lead_ref, None, "")
            continue
        # A person new to the database whom an earlier row of this chunk already named.
        earlier = (
            (phone and new_phone.get(phone))
            or (wecom and new_wecom.get(wecom))
            or (email and new_email.get(email))
        )
        if earlier:
            plan.duplicates += 1
            if keep:
                outcomes.append(RowOutcome(candidate.row_number, DUPLICATE, candidate=candidate))
            touches.append((candidate.row_number, earlier, candidate))
            continue
        customer = customer_for(candidate)
        plan.contacts.append((customer[0], candidate.name, candidate.title, phone, wecom, email))
        lead_ref = lead_new(candidate, customer, ~(len(plan.contacts) - 1))
        if phone:
            new_phone[phone] = lead_ref
        if wecom:
            new_wecom[wecom] = lead_ref
        if email:
            new_email[email] = lead_ref


def _known(lead_ref: int) -> int | None:
    return lead_ref if lead_ref > 0 else None


# ---- writing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkWritten:
    customer_ids: list[int]
    contact_ids: list[int]
    lead_ids: list[int]
    regions: list[int | None]  # each new lead's region id, in the order of lead_ids
    owners: dict[int, int]  # lead id → owner id, of the new leads routing gave an owner
    at: dt.datetime  # when they arrived
    route_seconds: float = 0.0  # of the write's time, waiting for owners and writing assignments


ROUTE_SLICE = 2_000  # leads the routing thread hands over at a time (a multi-row statement's worth)


def ids_wanted(plan: ChunkPlan) -> dict[str, int]:
    """How many ids the plan's new rows take, by table."""
    return {
        Customer._meta.db_table: len(plan.customers),
        Contact._meta.db_table: len(plan.contacts),
        Lead._meta.db_table: len(plan.leads),
    }


def chunk_write(
    plan: ChunkPlan,
    ctx: ImportContext,
    writer: BulkWriter,
    router: BatchRouter | None = None,
    *,
    known: Callable[[ChunkNamed], None] | None = None,
) -> ChunkWritten:
    """Insert what the plan decided and count it on the job. The caller holds the transaction,
    so a chunk is all or nothing — its progress included.

    With a `router` (a rule set is in force) every new lead is routed before it is written — the
    facts routing reads of it are all in the plan — and written with its owner, then the
    assignments with their traces: routing the leads after writing them read every new lead back
    and rewrote it (a lead row has 14 indexes), ~20% of an import (measured, bench/imports.py).

    Routing runs in a thread of its own (`_OwnersInThread`) while this one writes what needs no
    owner — customers, contacts, first moves, touches, rejected rows — and then the leads, a slice
    at a time as their owners are decided. Routing is Python and holds the GIL; the writes are
    mostly the database's own work, during which the sqlite3 module and psycopg let go of it, so
    the two overlap on the machine's cores (SQLite: ~half of a chunk's writing time is spent
    outside the GIL, measured with py-spy --gil).

    `known` is told what the chunk makes known (`chunk_named`) as soon as every new lead's owner
    is decided, before the last leads and the assignments are written: the next chunk can be
    planned from then on (`services.PlanAhead`), beside the rest of this one's writes."""
    tables = ctx.tables()
    ids = writer.ids_reserve(ids_wanted(plan), drawn=plan.ids)
    customer_ids = ids.get(tables["customer"].name, [])
    contact_ids = ids.get(tables["contact"].name, [])
    lead_ids = ids.get(tables["lead"].name, [])
    now = router.now if router is not None else clock.now()
    at = moment(now, connection)
    actor_id, stage_id, pipeline_id = ctx.actor_id, ctx.stage_id, ctx.pipeline_id
    job_id, touch_status = ctx.job.pk, EventStatus.TOUCH.value
    open_status, source = LeadStatus.OPEN.value, Channel.IMPORT.value
    with _OwnersInThread(plan, ctx, lead_ids, router, now, writer) as routing:
        writer.insert(
            tables["customer"],
            [
                (customer_id, name, key, industry, province, city, at, at)
                for customer_id, (name, key, industry, province, city) in zip(
                    customer_ids, plan.customers, strict=True
                )
            ],
        )
        writer.insert(
            tables["contact"],
            [
                (
                    contact_id,
                    customer if customer > 0 else customer_ids[~customer],
                    name,
                    title,
                    phone,
                    wecom,
                    email,
                    at,
                    at,
                )
                for contact_id, (customer, name, title, phone, wecom, email) in zip(
                    contact_ids, plan.contacts, strict=True
                )
            ],
        )
        explanation = ctx.explanation_json
        writer.insert(
            tables["move"],
            [
                (lead_id, stage_id, open_status, actor_id, at, note, filled, explanation)
                for lead_id, (_, _, _, _, _, _, note, filled) in zip(lead_ids, plan.leads, strict=True)
            ],
        )
        writer.insert(
            tables["event"],
            [
                (
                    ctx.source_id,
                    f"import:{job_id}:{row_number}",
                    at,
                    body,
                    touch_status,
                    lead if lead > 0 else lead_ids[~lead],
                    candidate.campaign,
                    1,
                    at,
                    normalised,
                    actor_id,
                )
                for (row_number, lead, candidate), (body, normalised) in zip(
                    plan.touches, plan.touch_bodies, strict=True
                )
            ],
        )
        writer.insert(
            tables["reject"],
            [
                (job_id, row_number, json.dumps(cells, ensure_ascii=False), reason)
                for row_number, cells, reason in plan.rejects
            ],
        )
        regions = [lead[4] for lead in plan.leads]
        for start, end, owners in routing.slices():
            if known is not None and end == len(lead_ids):
                decided = ChunkWritten(customer_ids, contact_ids, lead_ids, regions, routing.owners, now)
                known(chunk_named(plan, decided))
            lead_rows = []
            for lead_id, (title, customer, contact, campaign, region_id, amount, _, _) in zip(
                lead_ids[start:end], plan.leads[start:end], strict=True
            ):
                owner_id = owners.get(lead_id)
                lead_rows.append(
                    (
                        lead_id,
                        title,
                        customer if customer > 0 else customer_ids[~customer],
                        contact if contact > 0 else contact_ids[~contact],
                        source,
                        campaign,
                        region_id,
                        pipeline_id,
                        stage_id,
                        open_status,
                        amount,
                        at,
                        at,
                        at,
                        owner_id,
                        at if owner_id is not None else None,
                    )
                )
            writer.insert(tables["lead"], lead_rows)
            routing.assignments_write()
        routing.save()
    counted = ImportJob.objects.filter(pk=job_id, rows_done=ctx.rows_done).update(
        rows_done=F("rows_done") + plan.rows,
        created=F("created") + plan.created,
        touches=F("touches") + plan.touch_count,
        duplicates_in_file=F("duplicates_in_file") + plan.duplicates,
        rejected=F("rejected") + len(plan.rejects),
        updated_at=now,
    )
    if not counted:
        # The job's progress moved under us: another worker runs it (it was restarted as stalled).
        raise ImportTakenOver(f"import {job_id} is being run by another worker")
    if writer.triggers_skipped and routing.owners:
        # what routing's loads' triggers would have counted: every new lead is open, and its
        # assignment was made at the chunk's moment
        per_owner = Counter(routing.owners.values())
        quarter = quarter_of(now)
        loads_add(connection, per_owner, {(owner, quarter): n for owner, n in per_owner.items()})
    writer.references_confirm()
    return ChunkWritten(
        customer_ids=customer_ids,
        contact_ids=contact_ids,
        lead_ids=lead_ids,
        regions=regions,
        owners=routing.owners,
        at=now,
        route_seconds=routing.seconds,
    )


class _OwnersInThread:
    """Who gets each new lead of a chunk, decided in a thread while the chunk's other rows are
    written: `slices()` gives (start, end, owners) for consecutive slices of the plan's leads, as
    the thread decides them (all of them at once, owners empty, without a router). The thread
    only decides, in memory; every statement stays on the caller's connection and transaction:
    `assignments_write` appends the assignments of the slices handed over so far, `save` the
    rest and the rotations. Leaving the block stops the thread and waits for it (a failed write
    abandons the chunk's routing with the chunk); a failure of the thread is raised here.

    `seconds` is the writer's time spent on routing: waiting for a slice's owners, writing the
    assignments and rotations — what the chunk would save if routing were free."""

    def __init__(
        self,
        plan: ChunkPlan,
        ctx: ImportContext,
        lead_ids: list[int],
        router: BatchRouter | None,
        now: dt.datetime,
        writer: BulkWriter,
    ) -> None:
        self._plan, self._ctx, self._lead_ids, self._router, self._now = plan, ctx, lead_ids, router, now
        self._writer = writer
        self.owners: dict[int, int] = {}
        self.seconds = 0.0
        self._handed: queue.SimpleQueue[tuple[int, int, dict[int, int], int] | BaseException | None] = (
            queue.SimpleQueue()
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._decided_assignments = 0

    def __enter__(self) -> _OwnersInThread:
        if self._router is not None and self._lead_ids:
            self._thread = threading.Thread(target=self._decide, name="import-routing", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()

    def _decide(self) -> None:
        router = self._router
        assert router is not None
        try:
            for start in range(0, len(self._lead_ids), ROUTE_SLICE):
                if self._stop.is_set():
                    return
                end = min(start + ROUTE_SLICE, len(self._lead_ids))
                owners = _owners_decide(self._plan, self._ctx, self._lead_ids, router, self._now, start, end)
                self._handed.put((start, end, owners, len(router.assignments)))
            self._handed.put(None)
        except BaseException as exc:  # handed to the writer, which raises it
            self._handed.put(exc)

    def slices(self) -> Iterator[tuple[int, int, dict[int, int]]]:
        if self._thread is None:
            yield 0, len(self._lead_ids), {}
            return
        while True:
            began = time.monotonic()
            item = self._handed.get()
            self.seconds += time.monotonic() - began
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            start, end, owners, self._decided_assignments = item
            self.owners.update(owners)
            yield start, end, owners

    def assignments_write(self) -> None:
        """The assignments of the slices handed over so far."""
        if self._router is not None:
            began = time.monotonic()
            self._router.save_assignments(upto=self._decided_assignments, writer=self._writer)
            self.seconds += time.monotonic() - began

    def save(self) -> None:
        if self._router is not None:
            began = time.monotonic()
            self._router.save(writer=self._writer)
            self.seconds += time.monotonic() - began


def _owners_decide(
    plan: ChunkPlan,
    ctx: ImportContext,
    lead_ids: list[int],
    router: BatchRouter,
    now: dt.datetime,
    start: int,
    end: int,
) -> dict[int, int]:
    """Who gets each new lead of the chunk from `start` to `end`: lead id → owner id (a lead not
    in it waits in its pool). The facts are those `routing.roster.lead_facts_unrouted` would read
    back once the lead is written: an imported lead has source `import`, no custom fields, its
    region from its customer's province, and its customer's province, industry and city."""
    owners: dict[int, int] = {}
    region_code = ctx.region_code
    source = Channel.IMPORT.value
    for lead_id, lead, (province, industry, city) in zip(
        lead_ids[start:end], plan.leads[start:end], plan.lead_customers[start:end], strict=True
    ):
        region_id = lead[4]
        facts = LeadFacts(
            lead_id=lead_id,
            source=source,
            province=province,
            region=region_code.get(region_id) if region_id is not None else None,
            industry=industry,
            city=city,
            fields={},
            at=now,
        )
        owner_id = router.decide(lead_id, facts)
        if owner_id is not None:
            owners[lead_id] = owner_id
    return owners


def chunk_announce(written: ChunkWritten, ctx: ImportContext) -> None:
    """C5 funnel rollups and C9 indicator rows of the chunk's new leads (`crm.signals.leads_arrived`):
    every one is open in the first stage. Sent after the chunk's leads are routed, with their
    owners, so the derived rows are made once under the owner — made before routing, under nobody,
    routing's `leads_reassigned` moved every one of them at once (a replay of its moves and a ledger
    subtract-update-add per lead): a third of an import's time (measured, bench/imports.py)."""
    lead_ids, owners = written.lead_ids, written.owners
    signals.leads_arrived.send(
        sender=Lead,
        lead_ids=lead_ids,
        stage_id=ctx.stage_id,
        source=Channel.IMPORT.value,
        entries=[(region_id, written.at) for region_id in written.regions],
        owners=[owners.get(lead_id) for lead_id in lead_ids],
    )
