"""Intake (SPEC C1): store raw first, read it through the source's mapping, normalise, resolve the
person, then create a lead or record a touch (回流). Every step is idempotent and explained."""

from __future__ import annotations

import difflib
import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from salesloop.accounts.geography import PROVINCE_CODE_BY_NAME, province_code
from salesloop.accounts.models import Province, User
from salesloop.core import clock, explanations
from salesloop.core.audit import audit_record, snapshot
from salesloop.core.roles import Role, is_admin
from salesloop.core.rows import SqlQuestion, first_row, not_blank, sql_rows
from salesloop.crm.models import Contact, Customer, Lead, LeadStatus, company_key
from salesloop.crm.phones import PhoneError
from salesloop.crm.services import lead_arrive
from salesloop.intake.channels import Arrival, MappingError, arrival_read, mapping_validate
from salesloop.intake.imports.phone_fast import phone_normalise
from salesloop.intake.models import EventStatus, InboundEvent, MergeSuggestion, Source, SourceKind
from salesloop.notify.services import notification_send
from salesloop.routing.services import lead_route

log = logging.getLogger(__name__)

SOURCE_FIELDS = (
    "kind",
    "name",
    "slug",
    "field_mapping",
    "pipeline",
    "default_campaign",
    "enabled",
    "wecom_corp_id",
)
MAX_BODY_BYTES = 1024 * 1024


class ProcessingError(Exception):
    """A payload that cannot become a lead; the message is the readable reason kept on the event."""


# ---- sources --------------------------------------------------------------------------------


def _source_validate(source: Source) -> None:
    if source.kind not in SourceKind.values:
        raise ValidationError({"kind": f"one of {', '.join(SourceKind.values)}"})
    if not source.name.strip():
        raise ValidationError({"name": "required"})
    try:
        mapping_validate(source.field_mapping)
    except MappingError as exc:
        raise ValidationError({"field_mapping": str(exc)}) from exc
    if source.kind == SourceKind.WECOM:
        if not source.wecom_token:
            raise ValidationError({"wecom_token": "a WeCom source needs the callback Token"})
        if len(source.wecom_aes_key) != 43 or not _aes_key_decodes(source.wecom_aes_key):
            raise ValidationError(
                {"wecom_aes_key": "the EncodingAESKey is 43 characters of base64 (a 32-byte key)"}
            )
        if not source.wecom_corp_id:
            raise ValidationError({"wecom_corp_id": "a WeCom source needs the corp id"})
    elif source.kind in {SourceKind.DOUYIN, SourceKind.CALL_400, SourceKind.API} and len(source.secret) < 16:
        raise ValidationError({"secret": "signed channels need a secret of at least 16 characters"})


def _aes_key_decodes(key: str) -> bool:
    import base64
    import binascii

    try:
        return len(base64.b64decode(key + "=", validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def _require_admin(actor: Any) -> None:
    if not is_admin(actor):
        raise PermissionDenied("only administrators configure channels")


@transaction.atomic
def source_create(
    *,
    actor: Any,
    kind: str,
    name: str,
    secret: str = "",
    wecom_token: str = "",
    wecom_aes_key: str = "",
    wecom_corp_id: str = "",
    field_mapping: dict[str, str] | None = None,
    pipeline: Any = None,
    default_campaign: str = "",
    enabled: bool = True,
    slug: str | None = None,
) -> Source:
    if actor is not None:
        _require_admin(actor)
    if not secret and kind in {SourceKind.DOUYIN, SourceKind.CALL_400, SourceKind.API}:
        import secrets as _secrets

        secret = _secrets.token_urlsafe(32)  # a fresh secret is shown once in the answer
    source = Source(
        kind=kind,
        name=name.strip(),
        secret=secret,
        wecom_token=wecom_token,
        wecom_aes_key=wecom_aes_key,
        wecom_corp_id=wecom_corp_id,
        field_mapping=field_mapping or {},
        pipeline=pipeline,
        default_campaign=default_campaign,
        enabled=enabled,
    )
    if slug:
        if Source.objects.filter(slug=slug).exists():
            raise ValidationError({"slug": f"{slug!r} is taken"})
        source.slug = slug
    _source_validate(source)
    source.save()
    audit_record(actor=actor, action="source.create", target=source, after=snapshot(source, SOURCE_FIELDS))
    return source


@transaction.atomic
def source_update(*, actor: Any, source: Source, **changes: Any) -> Source:
    _require_admin(actor)
    before = snapshot(source, SOURCE_FIELDS)
    allowed = {
        "name",
        "secret",
        "wecom_token",
        "wecom_aes_key",
        "wecom_corp_id",
        "field_mapping",
        "pipeline",
        "default_campaign",
        "enabled",
    }
    for key, value in changes.items():
        if key not in allowed:
            raise ValidationError({key: "cannot be changed"})
        setattr(source, key, value)
    _source_validate(source)
    source.save()
    audit_record(
        actor=actor,
        action="source.update",
        target=source,
        before=before,
        after=snapshot(source, SOURCE_FIELDS),
    )
    return source


# ---- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    event_id: int
    status: str
    lead_id: int | None
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"event_id": self.event_id, "status": self.status, "lead_id": self.lead_id}
        if self.error:
            answer["error"] = self.error
        return answer


def outcome_of(event: InboundEvent) -> Outcome:
    return Outcome(event_id=event.pk, status=event.status, lead_id=event.lead_id, error=event.error)


INTAKE_TURN = 0x53_4C_49_4E  # "SLIN": PostgreSQL's advisory lock key of the intake's turn


def intake_turn_take() -> None:
    """On PostgreSQL, wait for every other process's intake writes to be committed; held until
    this transaction ends (SQLite's writers take turns for every transaction, core/sqlite). A
    webhook batch takes the turn first (intake/burst.py says why); so does an event received or
    processed one at a time: it creates people and leads and routes them as a batch does, but took
    its locks in another order (a new contact before the rules' rotations, which a batch now takes
    before writing its contacts), so the two could wait for each other until PostgreSQL broke the
    cycle after its deadlock timeout. Taken again inside a transaction that holds it, it is held
    once more (advisory locks count), which costs a round trip and waits for nobody."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [INTAKE_TURN])


def event_receive(
    *,
    source: Source,
    body: str,
    external_id: str = "",
    headers: dict[str, str] | None = None,
    remote_addr: str | None = None,
    created_by: Any = None,
    process: bool = True,
    settle: tuple[str, str] | None = None,
) -> Outcome:
    """Store the raw payload, then process it — in one transaction, which the caller's answer
    acknowledges. A replay of (source, external id) answers with the first outcome, creates nothing.

    Processing failures never lose the payload: the event stays, marked failed with the reason.
    `settle=(status, reason)` stores an event whose outcome the channel already knows (a WeCom
    event that is not a new contact is `ignored`; an undecodable one `failed`) instead of processing.
    """
    with transaction.atomic():
        intake_turn_take()
        # Insert first: a new delivery (the common case) costs one statement; a replay hits the
        # unique (source, external id) index and answers with the stored outcome.
        try:
            with transaction.atomic():
                event = InboundEvent.objects.create(
                    source=source,
                    external_id=external_id[:128],
                    body=body,
                    headers=headers or {},
                    remote_addr=remote_addr,
                    created_by=created_by if getattr(created_by, "pk", None) else None,
                )
        except IntegrityError:
            # A replay, or a concurrent delivery of the same item that won the race.
            existing = _event_existing(source, external_id)
            if existing is None:
                raise
            return outcome_of(existing)
        if settle is not None:
            event.status, event.error = settle
            event.processed_at = clock.now()
            event.save(update_fields=["status", "error", "processed_at"])
        elif process:
            event_process(event=event)
        return outcome_of(event)


def _event_existing(source: Source, external_id: str) -> InboundEvent | None:
    if not external_id:
        return None
    # `exclude(external_id="")` repeats the partial unique index's condition so SQLite uses it.
    return (
        InboundEvent.objects.exclude(external_id="")
        .filter(source=source, external_id=external_id[:128])
        .first()
    )


def event_process(*, event: InboundEvent) -> InboundEvent:
    """Read, normalise and resolve one stored event. Idempotent: a processed event is left alone."""
    if event.status in {EventStatus.CREATED, EventStatus.TOUCH, EventStatus.IGNORED}:
        return event
    event.attempts += 1
    event.processed_at = clock.now()
    try:
        with transaction.atomic():
            intake_turn_take()  # a retry, a confirmed card: as a received event (`event_receive`)
            arrival = _arrival(event)
            event.normalised = arrival.as_json()
            event.campaign = (arrival.campaign or event.source.default_campaign)[:120]
            lead, is_new = _lead_for_arrival(event.source, arrival, event)
    except ProcessingError as exc:
        event.status, event.error, event.lead = EventStatus.FAILED, str(exc), None
    except ValidationError as exc:
        event.status, event.error, event.lead = EventStatus.FAILED, _validation_reason(exc), None
    else:
        event.status = EventStatus.CREATED if is_new else EventStatus.TOUCH
        event.error = ""
        event.lead = lead
        if not is_new:
            _touch_notify(lead, event)
    event.save(
        update_fields=["status", "error", "lead", "normalised", "campaign", "attempts", "processed_at"]
    )
    return event


def _validation_reason(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(
            f"{field}: {' '.join(m for e in errs for m in e.messages)}"
            for field, errs in exc.error_dict.items()
        )
    return " ".join(exc.messages)


def _arrival(event: InboundEvent) -> Arrival:
    try:
        item = json.loads(event.body)
    except ValueError as exc:
        raise ProcessingError(f"the payload is not JSON: {exc}") from exc
    try:
        return arrival_read(event.source.kind, event.source.field_mapping, item)
    except MappingError as exc:
        raise ProcessingError(str(exc)) from exc


@dataclass
class Person:
    phone: str
    phone_kind: str
    province_code: str | None
    city: str


def _person(source: Source, arrival: Arrival) -> Person:
    from salesloop.intake.channels import mapping_for

    phone_path = mapping_for(source.kind, source.field_mapping).get("phone", "")
    phone = kind = ""
    derived_province = derived_city = None
    if arrival.phone:
        try:
            info = phone_normalise(arrival.phone)  # `phone_parse`'s answer, a mobile ~50× sooner
        except PhoneError as exc:
            raise ProcessingError(f"phone (from '{phone_path}'): {exc}") from exc
        phone, kind = info.e164, info.kind
        derived_province, derived_city = info.province, info.city
    if not (phone or arrival.wecom_external_id or arrival.email):
        raise ProcessingError(
            f"no phone, e-mail or WeCom id in the payload (phone is read from '{phone_path or 'nowhere'}'); "
            "fix the source's field mapping and retry"
        )
    province = province_code(arrival.province) if arrival.province else None
    if province is None and derived_province:
        province = PROVINCE_CODE_BY_NAME.get(derived_province)
    city = arrival.city or (derived_city or "" if province else "")
    return Person(phone=phone, phone_kind=kind, province_code=province, city=city)


def _contact_find(person: Person, arrival: Arrival, *, lock: bool = False) -> Contact | None:
    """The person, by phone, then WeCom id, then e-mail (the lowest id, should two share an e-mail).
    Each query repeats its partial index's condition (`not_blank`): SQLite uses a partial
    index only then, and would otherwise scan every contact. `lock` takes the found contact's row lock
    (PostgreSQL; SQLite's writer lock already serialises intake), under which its open lead is
    decided."""
    if person.phone:
        found = first_row(Contact, f"{not_blank('phone')} AND phone = %s", [person.phone], lock=lock)
        if found is not None:
            return found
    if arrival.wecom_external_id:
        found = first_row(
            Contact,
            f"{not_blank('wecom_external_id')} AND wecom_external_id = %s",
            [arrival.wecom_external_id],
            lock=lock,
        )
        if found is not None:
            return found
    if arrival.email:
        return first_row(
            Contact, f"{not_blank('email')} AND email = %s", [arrival.email.strip().lower()], lock=lock
        )
    return None


def _province(code: str | None) -> Province | None:
    return first_row(Province, "code = %s", [code], order_by="") if code else None


def _company_for(arrival: Arrival, person: Person) -> tuple[Customer | None, dict[str, Any] | None]:
    """The company of an arrival: (an existing customer of the same name by company key, None), or
    (None, the fields of a new customer). Only a company we already knew can hold a look-alike lead."""
    name = arrival.company or f"{arrival.contact_name or '未具名客户'}（个人）"
    key = company_key(name)
    if arrival.company and key:
        existing = first_row(Customer, "name_key = %s", [key])
        if existing is not None:
            existing.province = _province(existing.province_id)  # its region is the lead's
            return existing, None
    province = _province(person.province_code)
    return None, {
        "name": name,
        "industry": arrival.industry[:40],
        "province": province,
        "city": person.city[:40],
    }


def _open_lead(contact: Contact) -> Lead | None:
    return first_row(
        Lead, "contact_id = %s AND status = %s AND merged_into_id IS NULL", [contact.pk, LeadStatus.OPEN]
    )


def _lead_for_arrival(source: Source, arrival: Arrival, event: InboundEvent) -> tuple[Lead, bool]:
    """The person's open lead (a touch), or a new lead. Concurrent arrivals of one person resolve
    to one contact (unique phone / WeCom id) and, under its row lock, to one open lead.

    A new person's customer, contact and lead are written by `lead_arrive`, audited once."""
    person = _person(source, arrival)
    contact = _contact_find(person, arrival, lock=True)
    referrer = None
    if arrival.referrer_customer_id:
        referrer = (
            Customer.objects.filter(pk=int(arrival.referrer_customer_id)).first()
            if (arrival.referrer_customer_id.isdigit() and len(arrival.referrer_customer_id) < 19)
            else None
        )
        if referrer is None:
            raise ProcessingError(f"referrer_customer_id: no customer #{arrival.referrer_customer_id}")
    # A rep who records a lead themselves (a card they collected, a referral from their customer)
    # owns it; everything else waits in the region's pool for routing.
    recorder = event.created_by
    owner = recorder if recorder is not None and recorder.is_active and recorder.role == Role.REP else None
    lead_fields = {
        "owner": owner,
        "source": source.kind,  # every source kind is a lead channel (intake.models.SourceKind)
        "campaign": (arrival.campaign or source.default_campaign)[:120],
        "pipeline": source.pipeline,
        "created_at": event.received_at,  # a lead "arrives" when its payload did (C1.7 latency)
        "referred_by": referrer,
        "context": {"event": event.pk, "source_id": source.pk},
    }
    title = arrival.company or arrival.contact_name  # or, without either, the customer's name
    lead: Lead | None = None
    customer: Customer | None = None
    if contact is None:
        customer, new_customer = _company_for(arrival, person)
        try:
            lead = lead_arrive(
                actor=recorder,
                customer=customer,
                new_customer=new_customer,
                contact=None,
                new_contact={
                    "name": arrival.contact_name or "未具名",
                    "title": arrival.job_title,
                    "phone": person.phone,
                    "wecom_external_id": arrival.wecom_external_id,
                    "email": arrival.email,
                },
                title=title,
                **lead_fields,
            )
        except ValidationError as exc:
            # Someone else created this person a moment ago (nothing of ours was kept): resolve to them.
            contact = _contact_find(person, arrival, lock=True)
            if contact is None:
                raise ProcessingError(_validation_reason(exc)) from exc
    if lead is None:
        # A known person: under the lock of their contact row, their open lead gets the touch, so
        # that concurrent arrivals of one person cannot open two leads.
        assert contact is not None
        open_lead = _open_lead(contact)
        if open_lead is not None:
            return open_lead, False
        customer = contact.customer
        new_customer = None
        if customer is None:
            customer, new_customer = _company_for(arrival, person)
        lead = lead_arrive(
            actor=recorder,
            customer=customer,
            new_customer=new_customer,
            contact=contact,
            title=title,
            **lead_fields,
        )
    if customer is not None:  # a company created just now has no other leads to look alike
        merge_candidates_suggest([lead])
    # C8: the new lead is routed in the transaction that stores it, with its trace.
    lead_route(lead=lead, actor=recorder)
    return lead, True


def _touch_notify(lead: Lead, event: InboundEvent) -> None:
    """回流: tell the owner (or, for a pool lead, nobody yet — the pool page shows it)."""
    if lead.owner_id is None:
        return
    notification_send(
        user=User(pk=lead.owner_id),  # the owner's id is all a notification needs: no query for them
        kind="lead.touch",
        title=f"线索回流：{lead.title}",
        body=f"{lead.title} 通过「{event.source.name}」再次来访。",
        link=f"/leads/{lead.pk}/",
    )


MERGE_CANDIDATES_PER_LEAD = 20  # a company's newest open leads compared with an arrival


def merge_candidates_sql(keys: int) -> str:
    """Every lead, open or not, of the companies with one of `keys` name keys, with its contact's
    name. Reached through the customers (`name_key`'s index, then the leads' `customer_id` index):
    asked for a company's *open* leads newest first, SQLite walked every open lead by
    `lead_status_idx` until it had 20 — the whole open book for a company with fewer, per arrival
    (tests/intake/test_burst.py explains the plan). The caller checks the status."""
    lead, customer, contact = Lead._meta.db_table, Customer._meta.db_table, Contact._meta.db_table
    marks = ", ".join(["%s"] * keys)
    return (
        f"SELECT l.id, l.status, l.merged_into_id, c.name_key, ct.name FROM {customer} c "  # noqa: S608 -- our tables, values bound
        f"JOIN {lead} l ON l.customer_id = c.id LEFT JOIN {contact} ct ON ct.id = l.contact_id "
        f"WHERE c.name_key IN ({marks})"
    )


def merge_candidates_question(keys: list[str]) -> SqlQuestion:
    """`merge_candidates_sql` for companies with these name keys, to be asked with other reads."""
    return SqlQuestion(merge_candidates_sql(len(keys)), sorted(keys), (None,) * 5)


def merge_candidates_suggest(
    leads: list[Lead], arrived: list[Lead] | None = None, read: list[Any] | None = None
) -> None:
    """Fuzzy identity (SPEC C1.4): another open lead of the same company whose contact's name is
    similar is suggested for merge, with the reason — never merged automatically.

    For leads that have just arrived (their `contact` and `customer` loaded; a burst's several at
    once, with one read): each is compared with the company's newest open leads that arrived before
    it, as if they had arrived one at a time. `arrived`: leads of the same transaction whose rows
    may not be written yet (a webhook batch's, `core.rows.ids_assign`), known from memory. `read`:
    the answer to `merge_candidates_question` for (at least) these leads' companies, if the caller
    asked it with its own reads (in this transaction); else it is asked here. The suggestions are
    appended as rows (`rows_append`: held back with a webhook batch's other writes): a new lead has
    none yet, so none can be there already."""
    from salesloop.intake.imports.bulk import moment, rows_append

    wanted = [
        lead
        for lead in leads
        if lead.customer.name_key and not lead.customer.name.endswith("（个人）")  # type: ignore[union-attr]
    ]
    if not wanted:
        return
    keys = sorted({lead.customer.name_key for lead in wanted})  # type: ignore[union-attr]
    if read is None:
        question = merge_candidates_question(keys)
        read = sql_rows(question.sql, question.params, list(question.fields))
    rows = list(read)
    if arrived:
        seen, asked = {row[0] for row in rows}, set(keys)
        rows += [
            (
                lead.pk,
                lead.status,
                lead.merged_into_id,
                lead.customer.name_key,
                lead.contact.name if lead.contact else "",
            )  # type: ignore[union-attr]
            for lead in arrived
            if lead.pk not in seen and lead.customer.name_key in asked  # type: ignore[union-attr]
        ]
    open_by_key: dict[str, list[tuple[int, str]]] = {}  # name key → its open leads, newest first
    for lead_id, status, merged_into_id, key, name in sorted(rows, key=lambda row: -row[0]):
        if status == LeadStatus.OPEN and merged_into_id is None:
            open_by_key.setdefault(key, []).append((lead_id, name or ""))
    suggestions = []
    at = moment(clock.now())
    for lead in wanted:
        customer, name = lead.customer, lead.contact.name if lead.contact else ""  # type: ignore[union-attr]
        earlier = [other for other in open_by_key.get(customer.name_key, []) if other[0] < lead.pk]  # type: ignore[union-attr]
        for other_id, other_name in earlier[:MERGE_CANDIDATES_PER_LEAD]:
            similarity = difflib.SequenceMatcher(None, name, other_name).ratio()
            same_surname = bool(name and other_name and name[0] == other_name[0])
            if similarity < 0.5 and not (same_surname and len(name) <= 3):
                continue
            explanation = explanations.build(
                "merge_suggestion",
                company_key=customer.name_key,  # type: ignore[union-attr]
                name=name,
                other_name=other_name,
                name_similarity=round(similarity, 3),
                same_surname=same_surname,
            )
            score = Decimal(str(round(0.5 + similarity / 2, 3)))
            suggestions.append(
                (lead.pk, other_id, score, json.dumps(explanation, ensure_ascii=False), OPEN_SUGGESTION, at)
            )
    rows_append(MergeSuggestion, SUGGESTION_COLUMNS, suggestions)


SUGGESTION_COLUMNS = ("lead_id", "candidate_id", "score", "explanation", "status", "created_at")
OPEN_SUGGESTION = MergeSuggestion.Status.OPEN.value


@transaction.atomic
def event_retry(*, actor: Any, event: InboundEvent) -> InboundEvent:
    """Re-process a failed event from its stored raw payload (after the mapping was fixed)."""
    if not (is_admin(actor) or actor.role == Role.DIRECTOR):
        raise PermissionDenied("only administrators and directors retry inbound events")
    event = InboundEvent.objects.select_for_update().select_related("source").get(pk=event.pk)
    if event.status != EventStatus.FAILED:
        raise ValidationError({"status": f"only failed events are retried; this one is {event.status}"})
    if event.source.kind == SourceKind.CARD and not event.external_id.endswith(":confirmed"):
        # A card photo is retried by reading it again, not by mapping its (image) body.
        from salesloop.intake.cards import card_ocr_retry

        return card_ocr_retry(actor=actor, event=event)
    before = {"status": event.status, "error": event.error}
    event_process(event=event)
    audit_record(
        actor=actor,
        action="event.retry",
        target=event,
        before=before,
        after={"status": event.status, "error": event.error, "lead": event.lead_id},
    )
    return event


def referral_source() -> Source:
    source = Source.objects.filter(kind=SourceKind.REFERRAL, enabled=True).order_by("id").first()
    if source is None:
        source = source_create(actor=None, kind=SourceKind.REFERRAL, name="老客转介")
    return source


def referral_create(
    *,
    actor: Any,
    referrer: Customer,
    name: str,
    phone: str = "",
    company: str = "",
    email: str = "",
    message: str = "",
) -> Outcome:
    """C1.1 老客转介: someone working an existing customer records the person that customer referred.
    It takes the normal intake path (raw event, identity, dedup) and the lead keeps the referrer."""
    import uuid

    if actor.role == Role.PRODUCT_MANAGER and not actor.is_superuser:
        raise PermissionDenied("product managers do not record referrals")
    if not name.strip():
        raise ValidationError({"name": "required"})
    item = {
        "referral_id": uuid.uuid4().hex,
        "referrer_customer_id": referrer.pk,
        "name": name.strip(),
        "phone": phone,
        "company": company,
        "email": email,
        "message": message,
    }
    outcome = event_receive(
        source=referral_source(),
        body=json.dumps(item, ensure_ascii=False),
        external_id=item["referral_id"],
        created_by=actor,
    )
    if outcome.status == EventStatus.FAILED:
        field = "phone" if "phone" in outcome.error else "name"
        raise ValidationError({field: outcome.error})
    return outcome


# ---- merge ----------------------------------------------------------------------------------


@transaction.atomic
def lead_merge(*, actor: Any, survivor: Lead, merged: Lead, reason: str = "") -> Lead:
    """Fold `merged` into `survivor`: the merged lead leaves lists and its inbound events count for the
    survivor; nothing is deleted, so un-merge restores it exactly."""
    if actor.role not in {Role.MANAGER, Role.DIRECTOR, Role.ADMIN} and not actor.is_superuser:
        raise PermissionDenied("managers, directors and administrators merge leads")
    if survivor.pk == merged.pk:
        raise ValidationError({"merged_lead_id": "a lead cannot be merged into itself"})
    survivor, merged = (Lead.objects.select_for_update().get(pk=pk) for pk in (survivor.pk, merged.pk))
    if survivor.merged_into_id:
        raise ValidationError({"lead_id": f"this lead is itself merged into #{survivor.merged_into_id}"})
    if merged.merged_into_id:
        raise ValidationError({"merged_lead_id": f"already merged into #{merged.merged_into_id}"})
    merged.merged_into = survivor
    merged.save(update_fields=["merged_into"])
    MergeSuggestion.objects.filter(
        Q(lead=merged, candidate=survivor) | Q(lead=survivor, candidate=merged)
    ).update(status=MergeSuggestion.Status.MERGED)
    audit_record(
        actor=actor,
        action="lead.merge",
        target=merged,
        before={"merged_into": None},
        after={"merged_into": survivor.pk},
        reason=reason,
    )
    return survivor


@transaction.atomic
def lead_unmerge(*, actor: Any, merged: Lead, reason: str = "") -> Lead:
    if actor.role not in {Role.MANAGER, Role.DIRECTOR, Role.ADMIN} and not actor.is_superuser:
        raise PermissionDenied("managers, directors and administrators un-merge leads")
    merged = Lead.objects.select_for_update().get(pk=merged.pk)
    if merged.merged_into_id is None:
        raise ValidationError({"lead_id": "this lead is not merged"})
    before = merged.merged_into_id
    merged.merged_into = None
    merged.save(update_fields=["merged_into"])
    audit_record(
        actor=actor,
        action="lead.unmerge",
        target=merged,
        before={"merged_into": before},
        after={"merged_into": None},
        reason=reason,
    )
    return merged
