"""Deliveries received together, decided together (SPEC C1.2–C1.5 at campaign-burst rates).

A campaign burst sends hundreds of deliveries a second. Taken one at a time each costs a
transaction and two dozen statements, and routing each new lead reads the roster and locks a
rotation again. `deliveries_receive` applies the same rules as `event_receive` + `event_process`
to a batch of deliveries in one transaction with a fixed number of statements:

- a replay of a stored (source, channel id) answers with the stored outcome, creates nothing; the
  same id twice in one batch is one event, answered twice;
- every other delivery is stored raw, as an `InboundEvent`, in the transaction that acknowledges it;
- a payload that cannot be read is kept as a failed event with the reason;
- a person already known (phone, then WeCom id, then e-mail) with an open lead is a touch (回流) on
  it, and its owner is told; a person named by an earlier delivery of the same batch too;
- anyone else becomes a lead (with a new or existing customer and contact) entering the first
  stage, audited by one `lead.arrive` entry, and every new lead of the batch is routed at once
  with the same engine and trace as one at a time (`routing.services.leads_route_new`).

Correctness does not depend on the batch: identities are unique in the database. Should another
process store one of the batch's people or event ids first, the batch is rolled back and its
deliveries go one by one through `event_receive`, which resolves the race as it always does.

The web processes' batches take turns, on PostgreSQL too (an advisory lock, `INTAKE_TURN`, first
in the transaction; SQLite's writers take theirs in core/sqlite). Written at once, two batches met
in the middle — one waiting for a funnel row the other had written, the other for a rotation the
first had locked — and PostgreSQL broke the cycle only after its deadlock timeout (1 s); or one
waited for the other's new contact and then went round again. What changes at human rates (the
rules, the roster, the provinces, the first stage) is read before the turn (`_Ahead`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, IntegrityError, OperationalError, connection, connections, transaction

from salesloop.accounts.models import Province, Region
from salesloop.core import clock
from salesloop.core.audit import snapshot
from salesloop.core.models import AuditEntry
from salesloop.core.rows import (
    IdsDrawn,
    Question,
    SqlQuestion,
    ids_assign,
    ids_question,
    instances_insert,
    model_rows_together,
    not_blank,
    writes_together,
)
from salesloop.crm import signals
from salesloop.crm.models import Contact, Customer, Lead, LeadStatus, company_key
from salesloop.crm.services import (
    CONTACT_FIELDS,
    CUSTOMER_FIELDS,
    LEAD_FIELDS,
    contact_build,
    customer_build,
    lead_build,
)
from salesloop.intake.imports.bulk import moment, rows_append
from salesloop.intake.models import EventStatus, InboundEvent, Source
from salesloop.intake.services import (
    Outcome,
    Person,
    ProcessingError,
    _arrival,
    _person,
    _validation_reason,
    event_receive,
    intake_turn_take,
    merge_candidates_question,
    merge_candidates_suggest,
    outcome_of,
)
from salesloop.notify.models import Notification
from salesloop.pipeline.models import StageMove
from salesloop.pipeline.selectors import (
    pipeline_first_stage,
    pipeline_first_stage_answered,
    pipeline_first_stage_question,
)
from salesloop.pipeline.services import entry_explanation_json

if TYPE_CHECKING:
    from salesloop.routing.services import RoutingConfig

BATCH_ATTEMPTS = 3


@dataclass
class Delivery:
    """One item a channel delivered: its raw body and what came with it."""

    source: Source
    body: str
    external_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    remote_addr: str | None = None
    reading: _Reading | None = None  # the payload read (`deliveries_read`); read in the batch if None


@dataclass
class _Item:
    """A delivery on its way through the batch."""

    delivery: Delivery
    event: InboundEvent
    person: Person | None = None
    arrival: Any = None
    lead: Lead | None = None  # the lead it created or touched
    is_new: bool = False
    created: dict[str, Any] = field(default_factory=dict)  # for lead.arrive: what was created
    customer_existed: bool = False
    solo: bool = False  # taken the one-at-a-time way, after the batch


def deliveries_receive(
    deliveries: list[Delivery], more: Callable[[], list[Delivery]] | None = None
) -> list[Outcome]:
    """Store and process deliveries together; one Outcome per delivery, in order. `more` (the
    group commit's, intake/coalesce.py) is asked, once the transaction holds the write turn, for
    deliveries that arrived meanwhile: they join the batch, their outcomes after the others'."""
    if not deliveries:
        return []
    deliveries = list(deliveries)
    # Reading the payloads needs no database: done before the write turn is taken (by each
    # request's own thread, `deliveries_read`, or here), so that the web processes of a SQLite
    # server read theirs while another writes.
    readings = _readings(deliveries)
    ahead = _ahead(deliveries)
    for _ in range(BATCH_ATTEMPTS):
        try:
            with transaction.atomic():
                intake_turn_take()
                if more is not None:
                    late = more()
                    deliveries += late
                    readings += _readings(late)
                return _receive(deliveries, readings, ahead)
        except (IntegrityError, OperationalError):
            # Another process stored one of these people or event ids between our reads and our
            # writes (or PostgreSQL broke a lock cycle): nothing of the batch was kept. Read again:
            # what the other process committed is now known (a touch, a replay).
            continue
    # Still racing: one by one, each resolving its own race as it always has.
    return [
        event_receive(
            source=d.source,
            body=d.body,
            external_id=d.external_id,
            headers=d.headers,
            remote_addr=d.remote_addr,
        )
        for d in deliveries
    ]


def deliveries_read(deliveries: list[Delivery]) -> list[Delivery]:
    """Read (map and normalise) each delivery's payload ahead of its batch: a web thread does it
    for its own request before it queues, so that a batch's leader, holding the write turn, does
    not read the deliveries that join it late."""
    for delivery in deliveries:
        if delivery.reading is None:
            delivery.reading = _reading(delivery)
    return deliveries


def _readings(deliveries: list[Delivery]) -> list[_Reading]:
    return [d.reading if d.reading is not None else _reading(d) for d in deliveries]


@dataclass
class _Ahead:
    """What a batch reads of the configuration before it takes the intake's turn: the provinces,
    the first stage of each pipeline its sources name (a late delivery's other pipeline is read in
    the turn) and the routing configuration. They change at human rates; read in the turn, seven
    statements of every batch waited there for the database (PostgreSQL: ~2 of a 10-delivery
    batch's ~18 ms, measured)."""

    provinces: _Provinces
    first_stages: dict[int | None, Any]
    routing: RoutingConfig


def _ahead(deliveries: list[Delivery]) -> _Ahead:
    """The batch's `_Ahead`, asked together: one round trip on PostgreSQL. Asked one by one, its
    six statements were a fifth of a batch's time under load (py-spy, 300 deliveries a second),
    each waiting for a server whose cores the web processes share."""
    from salesloop.routing.services import routing_config_answered, routing_config_questions

    pipelines: dict[int | None, Any] = {}
    for delivery in deliveries:
        source = delivery.source
        if source.pipeline_id not in pipelines:
            pipelines[source.pipeline_id] = source.pipeline
    questions = [
        _Provinces.question(),
        *(pipeline_first_stage_question(pipeline) for pipeline in pipelines.values()),
        *routing_config_questions(clock.now()),
    ]
    answers = model_rows_together(questions)
    first_stages = {
        pipeline_id: pipeline_first_stage_answered(pipeline, rows)
        for (pipeline_id, pipeline), rows in zip(pipelines.items(), answers[1:], strict=False)
    }
    return _Ahead(
        _Provinces(answers[0]), first_stages, routing_config_answered(answers[1 + len(pipelines) :])
    )


def _receive(deliveries: list[Delivery], readings: list[_Reading], ahead: _Ahead) -> list[Outcome]:
    now = clock.now()
    outcomes: list[Outcome | None] = [None] * len(deliveries)
    known = _known(deliveries, readings, ahead.routing, now)
    stored = known.stored
    first_of: dict[tuple[int, str], int] = {}  # (source, channel id) → index of its first delivery
    repeats: list[tuple[int, int]] = []  # (index, index of the delivery it repeats)
    items: list[tuple[int, _Item]] = []
    for index, delivery in enumerate(deliveries):
        key = (delivery.source.pk, delivery.external_id[:128])
        if delivery.external_id:
            if key in stored:
                outcomes[index] = outcome_of(stored[key])
                continue
            if key in first_of:
                repeats.append((index, first_of[key]))
                continue
            first_of[key] = index
        event = InboundEvent(
            source=delivery.source,
            external_id=delivery.external_id[:128],
            body=delivery.body,
            headers=delivery.headers,
            remote_addr=delivery.remote_addr,
            received_at=now,
            attempts=1,
            processed_at=now,
        )
        items.append((index, _read(_Item(delivery=delivery, event=event), readings[index])))

    readable = [item for _, item in items if item.person is not None]
    provinces = ahead.provinces
    notices: list[Notification] = []  # the winners' and the touched owners', inserted together
    # the rows nothing of the batch reads back (first moves, audit entries, assignments, rotations,
    # owners, funnel and indicator rows; on PostgreSQL its new customers, contacts, leads and
    # events too, their ids drawn first) go to the database together, at the end of the block
    with writes_together():
        events = [item.event for _, item in items if not item.solo]
        _decide_and_write(readable, now, provinces, ahead.first_stages, known, events)
        instances_insert(events)
        new = [item for item in readable if item.is_new]
        _audit_arrivals(new)
        if new:
            # Last before the touches' notices (which name the new leads' owners): routing locks
            # the rules' rotations until commit, and a one-at-a-time arrival waits for them.
            _route_and_announce(
                [item.lead for item in new], provinces.region_codes, notices, ahead.routing, known
            )  # type: ignore[misc]
        notices += _touch_notices([item for item in readable if not item.is_new and item.lead is not None])
        _notices_append(notices)

    for index, item in items:
        if item.solo:
            d = item.delivery
            outcomes[index] = event_receive(
                source=d.source,
                body=d.body,
                external_id=d.external_id,
                headers=d.headers,
                remote_addr=d.remote_addr,
            )
        else:
            outcomes[index] = outcome_of(item.event)
    for index, first in repeats:
        outcomes[index] = outcomes[first]
    return [outcome for outcome in outcomes if outcome is not None]


def _route_and_announce(
    leads: list[Lead],
    region_codes: dict[int, str],
    notices: list[Notification],
    config: RoutingConfig,
    known: _Known,
) -> None:
    """Route the batch's new leads, then make their C5 funnel rollups and C9 indicator rows
    (`crm.signals.leads_arrived`, from the leads as built: their stages are loaded) — once, under
    the owners routing gave them. Made before routing, under nobody, routing's `leads_reassigned`
    replayed every new lead's moves from nobody to its owner: ~15% of a burst's time (profiled).
    Each winner's notice is added to `notices`.

    Leads whose ids were drawn ahead (PostgreSQL, `core.rows.ids_assign`) are not inserted yet:
    routing sets their owners on them and they are inserted here, once, with their owners, before
    the indicator rows that read them — rather than inserted ownerless and updated, which wrote
    every lead row, and its entries in each index that names the owner, twice."""
    from salesloop.routing.services import leads_route_new

    unsaved = leads[0]._state.adding
    winners = leads_route_new(
        leads=leads,
        region_codes=region_codes,
        tell_each=True,
        notices=notices,
        config=config,
        unsaved=unsaved,
        now=known.now,
        answered=known.routing,
    )
    if unsaved:
        instances_insert(leads)
    else:
        owner_of = {lead_id: owner_id for owner_id, ids in winners.items() for lead_id in ids}
        for lead in leads:
            lead.owner_id = owner_of.get(lead.pk, lead.owner_id)
    signals.leads_arrived.send(sender=Lead, lead_ids=[lead.pk for lead in leads], leads=leads)


@dataclass
class _Known:
    """What the database knows of a batch's deliveries: the events already stored by (source,
    channel id), the people by identity key (of several sharing an e-mail, the lowest id; on
    PostgreSQL their rows are locked, in id order, so a concurrent arrival decides their open lead
    after us), their leads, and the companies by key; the companies' leads (look-alikes), ids for
    the rows the batch may make (PostgreSQL) and routing's rotations, locked, and loads. Asked
    together (`core.rows.model_rows_together`: on PostgreSQL one round trip, while the batch holds
    the intake's turn), of every delivery read."""

    stored: dict[tuple[int, str], InboundEvent]
    contacts: dict[tuple[str, str], Contact]
    customers: dict[str, Customer]
    leads: list[Lead]  # the leads of everyone matching a key, oldest first (see `_open_leads`)
    now: dt.datetime
    look_alikes: list[Any] | None = None  # the companies' leads (`merge_candidates_question`)
    ids: IdsDrawn | None = None  # ids for the batch's new rows (PostgreSQL)
    routing: list[list[Any]] | None = None  # the answers to `BatchRouter.questions`


CONTACT_KEY_COLUMNS = {"phone": "phone", "wecom": "wecom_external_id", "email": "email"}


def _known(
    deliveries: list[Delivery], readings: list[_Reading], routing: RoutingConfig, now: dt.datetime
) -> _Known:
    from salesloop.routing.services import BatchRouter

    questions: list[Question | SqlQuestion] = []
    asked: list[tuple[str, str]] = []  # what each asks ("event", "contact", "lead", "customer", …; kind)
    ids_by_source: dict[int, set[str]] = {}
    for d in deliveries:
        if d.external_id:
            ids_by_source.setdefault(d.source.pk, set()).add(d.external_id[:128])
    for source_id, ids in ids_by_source.items():
        # repeats the partial unique index's condition, so SQLite uses it (and not every event of
        # the source by its source_id index)
        marks = ", ".join(["%s"] * len(ids))
        where = f"{not_blank('external_id')} AND source_id = %s AND external_id IN ({marks})"
        questions.append(Question(InboundEvent, where, [source_id, *sorted(ids)], order_by=""))
        asked.append(("event", ""))
    wanted: dict[str, set[str]] = {kind: set() for kind in CONTACT_KEY_COLUMNS}
    companies: set[str] = set()
    for reading in readings:
        if reading.person is None:
            continue
        for kind, value in _identity_keys(reading.person, reading.arrival):
            wanted[kind].add(value)
        if reading.arrival.company:
            companies.add(company_key(reading.arrival.company))
    people: list[tuple[str, list[str]]] = []  # (condition, values) of each kind of key asked
    for kind, values in wanted.items():
        if not values:
            continue
        column = CONTACT_KEY_COLUMNS[kind]
        # the partial index's condition, for SQLite
        where = f"{column} IN ({', '.join(['%s'] * len(values))}) AND {not_blank(column)}"
        questions.append(Question(Contact, where, sorted(values), lock=True))
        asked.append(("contact", kind))
        people.append((where, sorted(values)))
    if people:
        # their leads, asked with them (after their rows are locked): by the contact index
        contacts = connection.ops.quote_name(Contact._meta.db_table)
        matching = " UNION ALL ".join(f"SELECT id FROM {contacts} WHERE {where}" for where, _ in people)  # noqa: S608
        questions.append(
            Question(Lead, f"contact_id IN ({matching})", [value for _, keys in people for value in keys])
        )
        asked.append(("lead", ""))
    companies.discard("")
    if companies:
        where = f"name_key IN ({', '.join(['%s'] * len(companies))})"
        questions.append(Question(Customer, where, sorted(companies)))
        asked.append(("customer", ""))
        # their leads, for look-alikes of a new lead at a company we know (C1.5)
        questions.append(merge_candidates_question(sorted(companies)))
        asked.append(("look_alikes", ""))
    people_read = sum(1 for reading in readings if reading.person is not None)
    if people_read:
        # Any of them may be new: ids for as many new customers, contacts and leads (those not
        # given out are gaps in the sequences); the rules' rotations locked and the reps' loads.
        drawn = ids_question(
            [
                (Customer, people_read),
                (Contact, people_read),
                (Lead, people_read),
                (InboundEvent, len(deliveries)),
            ]
        )
        if drawn is not None:
            questions.append(drawn)
            asked.append(("ids", ""))
        routing_questions = BatchRouter.questions(now, routing)
        questions += routing_questions
        asked += [("routing", "")] * len(routing_questions)
    known = _Known(stored={}, contacts={}, customers={}, leads=[], now=now)
    for (what, kind), rows in zip(asked, model_rows_together(questions), strict=True):
        if what == "look_alikes":
            known.look_alikes = rows
            continue
        if what == "ids":
            known.ids = IdsDrawn(rows)
            continue
        if what == "routing":
            known.routing = [*(known.routing or []), rows]
            continue
        for row in rows:
            if what == "event":
                known.stored[(row.source_id, row.external_id)] = row
            elif what == "contact":
                known.contacts.setdefault((kind, getattr(row, CONTACT_KEY_COLUMNS[kind])), row)
            elif what == "lead":
                known.leads.append(row)
            else:
                known.customers.setdefault(row.name_key, row)
    return known


@dataclass
class _Reading:
    """A payload mapped and normalised, or why it cannot be."""

    arrival: Any = None
    person: Person | None = None
    normalised: dict[str, Any] | None = None
    campaign: str = ""
    error: str = ""
    solo: bool = False  # a referral names its referrer: the one-at-a-time path checks it


def _reading(delivery: Delivery) -> _Reading:
    reading = _Reading()
    source = delivery.source
    try:
        reading.arrival = arrival = _arrival(InboundEvent(source=source, body=delivery.body))
        reading.normalised = arrival.as_json()
        reading.campaign = (arrival.campaign or source.default_campaign)[:120]
        if arrival.referrer_customer_id:
            reading.solo = True
            return reading
        reading.person = _person(source, arrival)
    except ProcessingError as exc:
        reading.error = str(exc)
    except ValidationError as exc:
        reading.error = _validation_reason(exc)
    return reading


def _read(item: _Item, reading: _Reading) -> _Item:
    """The payload's reading on the item; a payload that cannot be read is a failed event with why."""
    event = item.event
    item.arrival, item.person, item.solo = reading.arrival, reading.person, reading.solo
    if reading.normalised is not None:
        event.normalised, event.campaign = reading.normalised, reading.campaign
    if reading.error:
        event.status, event.error = EventStatus.FAILED, reading.error
    return item


def _decide_and_write(
    items: list[_Item],
    now: dt.datetime,
    provinces: _Provinces,
    first_stages: dict[int | None, Any],
    known_to_us: _Known,
    events: list[InboundEvent],
) -> None:
    """Identity for the whole batch (the people and companies known, `_Known`, then the people's
    open leads), then customers, contacts, leads and their first moves in one insert each. On
    PostgreSQL the new rows and the batch's `events` (inserted by the caller) are given their ids
    first, all in one round trip, and their inserts go with the batch's other writes when its
    `writes_together` block ends (`core.rows.ids_assign`): nothing in the batch reads them back."""
    if not items:
        return
    known = known_to_us.contacts
    open_leads = _open_leads(known.values(), known_to_us.leads)
    customers = known_to_us.customers

    new_people: dict[tuple[str, str], _Item] = {}  # identity key → the batch item that created them
    for item in items:
        person, arrival = item.person, item.arrival
        assert person is not None
        contact = _known_person(person, arrival, known)
        earlier = _earlier_person(person, arrival, new_people)
        if contact is None and earlier is not None:
            item.lead, item.is_new = earlier.lead, False
        elif contact is not None and contact.pk in open_leads:
            item.lead, item.is_new = open_leads[contact.pk], False
        else:
            _lead_plan(item, contact, customers, provinces, first_stages, now)
            if contact is not None:
                open_leads[contact.pk] = item.lead  # type: ignore[assignment]
            for key in _identity_keys(person, arrival):
                new_people.setdefault(key, item)
        event = item.event
        event.status = EventStatus.CREATED if item.is_new else EventStatus.TOUCH
        event.error = ""

    new = [item for item in items if item.is_new]
    new_customers = [item.lead.customer for item in new if "customer" in item.created]  # type: ignore[union-attr]
    new_contacts = [item.lead.contact for item in new if "contact" in item.created]  # type: ignore[union-attr]
    leads = [item.lead for item in new]
    ids_assign(
        [new_customers, new_contacts, leads, [event for event in events if event.pk is None]], known_to_us.ids
    )
    # (each insert takes the ids of the objects saved just before: a contact its new customer's …)
    instances_insert(new_customers)
    instances_insert(new_contacts)
    if leads and leads[0].pk is None:  # no ids drawn ahead (SQLite): routing needs the rows' ids
        instances_insert(leads)
    else:  # inserted once routed, with their owners (`_route_and_announce`); meanwhile they name
        for lead in leads:  # their new customers and contacts by the ids drawn (the audit does)
            lead.customer, lead.contact = lead.customer, lead.contact
    _first_moves_insert(leads)  # type: ignore[arg-type]
    for item in items:
        item.event.lead = item.lead
    # a company we knew may hold a look-alike lead (C1.5), among others of this batch
    merge_candidates_suggest(
        [item.lead for item in new if item.customer_existed],  # type: ignore[misc]
        arrived=leads,  # type: ignore[arg-type]
        read=known_to_us.look_alikes,
    )


def _identity_keys(person: Person, arrival: Any) -> list[tuple[str, str]]:
    keys = []
    if person.phone:
        keys.append(("phone", person.phone))
    if arrival.wecom_external_id:
        keys.append(("wecom", arrival.wecom_external_id))
    if arrival.email:
        keys.append(("email", arrival.email.strip().lower()))
    return keys


def _known_person(person: Person, arrival: Any, known: dict[tuple[str, str], Contact]) -> Contact | None:
    """As `_contact_find`: by phone, then WeCom id, then e-mail."""
    for key in _identity_keys(person, arrival):
        if key in known:
            return known[key]
    return None


def _earlier_person(person: Person, arrival: Any, new_people: dict[tuple[str, str], _Item]) -> _Item | None:
    for key in _identity_keys(person, arrival):
        if key in new_people:
            return new_people[key]
    return None


def _open_leads(contacts: Iterable[Contact], leads: list[Lead]) -> dict[int, Lead]:
    """Each known contact's open lead, the oldest if there are several (as `_open_lead`), of the
    leads `_known` read (oldest first). Open and unmerged is checked here, so the contact index is
    SQLite's only choice: with the status in the query it walks every open lead (`lead_status_idx`)
    instead."""
    ids = {contact.pk for contact in contacts}
    found: dict[int, Lead] = {}
    for lead in leads:
        if lead.contact_id in ids and lead.status == LeadStatus.OPEN and lead.merged_into_id is None:
            found.setdefault(lead.contact_id, lead)  # type: ignore[arg-type]
    return found


def _lead_plan(
    item: _Item,
    contact: Contact | None,
    customers: dict[str, Customer],
    provinces: _Provinces,
    first_stages: dict[int | None, Any],
    now: dt.datetime,
) -> None:
    """A new lead for the item (unsaved), with a new customer and contact where needed — built and
    checked by the same functions as one at a time."""
    source, arrival, person = item.delivery.source, item.arrival, item.person
    assert person is not None
    customer = contact.customer if contact is not None else None
    item.customer_existed = customer is not None
    if customer is None:
        name = arrival.company or f"{arrival.contact_name or '未具名客户'}（个人）"
        key = company_key(name)
        customer = customers.get(key) if arrival.company and key else None
        if customer is not None:
            item.customer_existed = True
            customer.province = provinces.get(customer.province_id)
        else:
            customer = customer_build(
                name=name,
                industry=arrival.industry[:40],
                province=provinces.get(person.province_code) if person.province_code else None,
                city=person.city[:40],
                at=now,
            )
            item.created["customer"] = customer
            if arrival.company and key:
                customers[key] = customer  # a later delivery of the batch names the same company
    if contact is None:
        contact = contact_build(
            customer=customer,
            name=arrival.contact_name or "未具名",
            title=arrival.job_title,
            wecom_external_id=arrival.wecom_external_id,
            email=arrival.email,
            at=now,
        )
        contact.phone = person.phone  # E.164 already: `_person` parsed and checked it
        item.created["contact"] = contact
    pipeline_id = source.pipeline_id
    if pipeline_id not in first_stages:
        first_stages[pipeline_id] = pipeline_first_stage(source.pipeline)
    first_stage = first_stages[pipeline_id]
    if first_stage is None:
        raise ValidationError({"pipeline": "the pipeline has no stages"})
    item.lead = lead_build(
        customer=customer,
        contact=contact,
        first_stage=first_stage,
        title=arrival.company or arrival.contact_name,
        source=source.kind,
        campaign=(arrival.campaign or source.default_campaign)[:120],
        created_at=item.event.received_at,
    )
    item.is_new = True


class _Provinces:
    """Province code → a Province carrying its region id (all a new lead's region needs), and
    region id → code (what routing reads of it), read in one query of plain rows, instances made
    only for the provinces the batch names."""

    def __init__(self, rows: list[Any]) -> None:
        """`rows`: the answer to `question()`."""
        self._regions = {code: region_id for code, region_id, _ in rows}
        self.region_codes: dict[int, str] = {
            region_id: region_code for _, region_id, region_code in rows if region_id is not None
        }
        self._made: dict[str, Province] = {}

    @staticmethod
    def question() -> SqlQuestion:
        q = connection.ops.quote_name
        return SqlQuestion(
            f"SELECT p.code, p.region_id, r.code FROM {q(Province._meta.db_table)} p"  # noqa: S608 -- our tables
            f" LEFT JOIN {q(Region._meta.db_table)} r ON r.id = p.region_id",
            [],
        )

    def get(self, code: str | None) -> Province | None:
        if code is None or code not in self._regions:
            return None
        if code not in self._made:
            self._made[code] = Province(code=code, region_id=self._regions[code])
        return self._made[code]


MOVE_COLUMNS = ("lead_id", "from_stage_id", "to_stage_id", "from_status", "to_status", "at", "explanation")
AUDIT_COLUMNS = ("at", "action", "target_type", "target_id", "after")


def _first_moves_insert(leads: list[Lead]) -> None:
    """As `pipeline.services.stage_move_record` writes a new lead's entry into its first stage; the
    explanation is the same for every lead entering a stage, so it is built and encoded once per
    stage, and the moves go in as plain rows: nothing reads them back as instances."""
    if not leads:
        return
    db = connections[DEFAULT_DB_ALIAS]
    entering: dict[int, str] = {}
    moments: dict[dt.datetime, Any] = {}
    rows = []
    for lead in leads:
        stage_id = lead.stage_id
        assert stage_id is not None
        if stage_id not in entering:
            entering[stage_id] = entry_explanation_json(lead.stage.code, lead.status)
        at = lead.created_at
        if at not in moments:
            moments[at] = moment(at, db)
        rows.append((lead.pk, None, stage_id, "", lead.status, moments[at], entering[stage_id]))
    rows_append(StageMove, MOVE_COLUMNS, rows)


def _audit_arrivals(items: list[_Item]) -> None:
    """One `lead.arrive` entry per new lead, as `crm.services.lead_arrive` writes it, as plain rows
    (nothing reads them back as instances)."""
    if not items:
        return
    db = connections[DEFAULT_DB_ALIAS]
    target_type = Lead._meta.label_lower
    moments: dict[dt.datetime, Any] = {}
    rows = []
    for item in items:
        lead = item.lead
        assert lead is not None
        created: dict[str, Any] = {}
        if "customer" in item.created:
            created["customer"] = {"id": lead.customer.pk, **snapshot(lead.customer, CUSTOMER_FIELDS)}
        if "contact" in item.created:
            created["contact"] = {"id": lead.contact.pk, **snapshot(lead.contact, CONTACT_FIELDS)}  # type: ignore[union-attr,arg-type]
        via = {"event": item.event.pk, "source_id": item.delivery.source.pk}
        after = {**snapshot(lead, LEAD_FIELDS), "created": created, "via": via}
        at = lead.created_at
        if at not in moments:
            moments[at] = moment(at, db)
        rows.append(
            (moments[at], "lead.arrive", target_type, str(lead.pk), json.dumps(after, ensure_ascii=False))
        )
    rows_append(AuditEntry, AUDIT_COLUMNS, rows)


NOTICE_COLUMNS = ("user_id", "kind", "title", "body", "link", "created_at")


def _notices_append(notices: list[Notification]) -> None:
    """The winners' and the touched owners' notices, as plain rows: nothing reads their ids."""
    rows_append(
        Notification,
        NOTICE_COLUMNS,
        [(n.user_id, n.kind, n.title, n.body, n.link, moment(n.created_at)) for n in notices],
    )


def _touch_notices(items: list[_Item]) -> list[Notification]:
    """回流: each touched lead's owner hears once per delivery, as `_touch_notify` tells them. A
    lead created by this batch is the object routing gave its owner (`_route_and_announce`)."""
    notifications = []
    for item in items:
        lead = item.lead
        assert lead is not None
        owner_id = lead.owner_id
        if owner_id is None:
            continue
        notifications.append(
            Notification(
                user_id=owner_id,
                kind="lead.touch",
                title=f"线索回流：{lead.title}"[:200],
                body=f"{lead.title} 通过「{item.delivery.source.name}」再次来访。",
                link=f"/leads/{lead.pk}/",
                created_at=item.event.received_at,
            )
        )
    return notifications
