"""Writes of customers, contacts and leads. Every change goes through here and is audited."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from salesloop.accounts.models import Province, User
from salesloop.core import clock
from salesloop.core.audit import audit_record, snapshot
from salesloop.core.roles import Role
from salesloop.crm import signals
from salesloop.crm.models import Channel, CompanySize, Contact, Customer, Lead, company_key
from salesloop.crm.phones import PhoneError, phone_to_e164
from salesloop.crm.selectors import lead_editable

CUSTOMER_FIELDS = ("name", "industry", "size", "province", "city")
CONTACT_FIELDS = ("customer", "name", "title", "phone", "wecom_external_id", "email")
LEAD_FIELDS = ("title", "customer", "contact", "source", "campaign", "owner", "region", "expected_amount")


def _clean_text(value: str | None, field: str, *, required: bool = False, max_length: int = 200) -> str:
    text = (value or "").strip()
    if required and not text:
        raise ValidationError({field: "required"})
    if len(text) > max_length:
        raise ValidationError({field: f"at most {max_length} characters"})
    return text


def _clean_amount(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError({"expected_amount": f"not an amount: {value!r}"}) from exc
    if not amount.is_finite() or amount < 0:
        raise ValidationError({"expected_amount": "must be zero or more"})
    if amount >= Decimal("1e12"):
        raise ValidationError({"expected_amount": "too large"})
    return amount


def _clean_phone(value: str | None) -> str:
    if not value:
        return ""
    try:
        return phone_to_e164(value)
    except PhoneError as exc:
        raise ValidationError({"phone": str(exc)}) from exc


def _clean_email(value: str | None) -> str:
    email = (value or "").strip().lower()
    if email:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise ValidationError({"email": "not an e-mail address"}) from exc
    return email


def _custom_values(
    entity: str, values: dict[str, Any] | None, *, partial: bool, record: Any = None
) -> dict[str, Any]:
    """C10.1: custom field values checked against the organisation's definitions (workspace)."""
    from salesloop.workspace.services import custom_values_clean

    return custom_values_clean(entity=entity, values=values, partial=partial, record=record)


def _custom_values_change(entity: str, record: Customer | Lead, values: Any) -> dict[str, Any]:
    """A record's values after a partial change through the API or a form (None clears a field)."""
    from salesloop.workspace.values import values_merge

    cleaned = _custom_values(entity, values, partial=True, record=record)
    return values_merge(record.custom_fields, cleaned)


def customer_build(
    *,
    name: str,
    industry: str = "",
    size: str = "",
    province: Province | None = None,
    city: str = "",
    at: dt.datetime | None = None,
) -> Customer:
    """A new customer checked and cleaned, not saved yet (intake saves a burst's in one statement),
    made `at` (default: now)."""
    if size and size not in CompanySize.values:
        raise ValidationError({"size": f"one of {', '.join(CompanySize.values)}"})
    clean_name = _clean_text(name, "name", required=True)
    at = at or clock.now()
    return Customer(
        name=clean_name,
        name_key=company_key(clean_name),
        industry=_clean_text(industry, "industry", max_length=40),
        size=size,
        province=province,
        city=_clean_text(city, "city", max_length=40),
        created_at=at,
        updated_at=at,
    )


def _customer_new(**fields: Any) -> Customer:
    customer = customer_build(**fields)
    customer.save(force_insert=True)
    return customer


@transaction.atomic
def customer_create(
    *,
    actor: User | None,
    name: str,
    industry: str = "",
    size: str = "",
    province: Province | None = None,
    city: str = "",
    custom_fields: dict[str, Any] | None = None,
) -> Customer:
    """A customer record. `custom_fields`, when given (API, pages), must hold every required field."""
    customer = _customer_new(name=name, industry=industry, size=size, province=province, city=city)
    after = snapshot(customer, CUSTOMER_FIELDS)
    if custom_fields is not None:
        customer.custom_fields = _custom_values("customer", custom_fields, partial=False, record=customer)
        customer.save(update_fields=["custom_fields"])
        after["custom_fields"] = customer.custom_fields
    audit_record(actor=actor, action="customer.create", target=customer, after=after)
    return customer


@transaction.atomic
def customer_update(*, actor: User, customer: Customer, **changes: Any) -> Customer:
    before = snapshot(customer, CUSTOMER_FIELDS)
    after_extra: dict[str, Any] = {}
    if "custom_fields" in changes:
        before["custom_fields"] = customer.custom_fields
        customer.custom_fields = _custom_values_change("customer", customer, changes.pop("custom_fields"))
        after_extra["custom_fields"] = customer.custom_fields
    for key, value in changes.items():
        if key not in CUSTOMER_FIELDS:
            raise ValidationError({key: "cannot be changed here"})
        if key == "name":
            value = _clean_text(value, "name", required=True)
            customer.name_key = company_key(value)
        elif key == "size" and value and value not in CompanySize.values:
            raise ValidationError({"size": f"one of {', '.join(CompanySize.values)}"})
        elif key in {"industry", "city"}:
            value = _clean_text(value, key, max_length=40)
        setattr(customer, key, value)
    customer.save()
    audit_record(
        actor=actor,
        action="customer.update",
        target=customer,
        before=before,
        after={**snapshot(customer, CUSTOMER_FIELDS), **after_extra},
    )
    return customer


def contact_build(
    *,
    name: str,
    customer: Customer | None = None,
    title: str = "",
    phone: str = "",
    wecom_external_id: str = "",
    email: str = "",
    at: dt.datetime | None = None,
) -> Contact:
    """A new contact checked and cleaned, not saved yet, made `at` (default: now)."""
    at = at or clock.now()
    return Contact(
        customer=customer,
        name=_clean_text(name, "name", required=True, max_length=80),
        title=_clean_text(title, "title", max_length=80),
        phone=_clean_phone(phone),
        wecom_external_id=_clean_text(wecom_external_id, "wecom_external_id", max_length=64),
        email=_clean_email(email),
        created_at=at,
        updated_at=at,
    )


def _contact_new(**fields: Any) -> Contact:
    contact = contact_build(**fields)
    _contact_save_unique(contact)
    return contact


@transaction.atomic
def contact_create(
    *,
    actor: User | None,
    name: str,
    customer: Customer | None = None,
    title: str = "",
    phone: str = "",
    wecom_external_id: str = "",
    email: str = "",
) -> Contact:
    contact = _contact_new(
        name=name,
        customer=customer,
        title=title,
        phone=phone,
        wecom_external_id=wecom_external_id,
        email=email,
    )
    audit_record(
        actor=actor, action="contact.create", target=contact, after=snapshot(contact, CONTACT_FIELDS)
    )
    return contact


@transaction.atomic
def contact_update(*, actor: User, contact: Contact, **changes: Any) -> Contact:
    before = snapshot(contact, CONTACT_FIELDS)
    for key, value in changes.items():
        if key == "name":
            value = _clean_text(value, "name", required=True, max_length=80)
        elif key == "title":
            value = _clean_text(value, "title", max_length=80)
        elif key == "phone":
            value = _clean_phone(value)
        elif key == "email":
            value = _clean_email(value)
        elif key == "wecom_external_id":
            value = _clean_text(value, key, max_length=64)
        else:
            raise ValidationError({key: "cannot be changed here"})
        setattr(contact, key, value)
    _contact_save_unique(contact)
    audit_record(
        actor=actor,
        action="contact.update",
        target=contact,
        before=before,
        after=snapshot(contact, CONTACT_FIELDS),
    )
    return contact


def _contact_save_unique(contact: Contact) -> None:
    """Save, refusing by field a phone or WeCom id that already identifies another person.

    The unique indexes decide (also between concurrent writers); only a refused save looks up
    which field collided, so the common case costs no extra query."""
    try:
        with transaction.atomic():
            contact.save()
    except IntegrityError as exc:
        others = Contact.objects.exclude(pk=contact.pk)
        for field in ("phone", "wecom_external_id"):
            value = getattr(contact, field)
            matches = others.exclude(**{field: ""}).filter(**{field: value})  # the partial index's condition
            existing = matches.values_list("pk", flat=True).first() if value else None
            if existing:
                raise ValidationError({field: f"already belongs to contact #{existing}"}) from exc
        raise ValidationError({"phone": "already belongs to another contact"}) from exc


def _check_owner(owner: User | None) -> None:
    if owner is not None and ((owner.role != Role.REP and owner.role != Role.MANAGER) or not owner.is_active):
        raise ValidationError({"owner": "a lead is owned by an active rep or manager"})


def lead_build(
    *,
    customer: Customer,
    contact: Contact | None,
    first_stage: Any,
    created_at: dt.datetime,
    title: str = "",
    source: str = Channel.MANUAL,
    campaign: str = "",
    owner: User | None = None,
    expected_amount: Any = "0",
    referred_by: Customer | None = None,
) -> Lead:
    """A new lead entering `first_stage`, cleaned, not saved yet. Its region is the region of the
    customer's province."""
    province = customer.province
    return Lead(
        title=_clean_text(title, "title") or customer.name,
        customer=customer,
        contact=contact,
        source=source,
        campaign=_clean_text(campaign, "campaign", max_length=120),
        owner=owner,
        region_id=province.region_id if province else None,
        pipeline_id=first_stage.pipeline_id,
        stage=first_stage,
        expected_amount=_clean_amount(expected_amount),
        stage_entered_at=created_at,
        assigned_at=created_at if owner else None,
        created_at=created_at,
        updated_at=created_at,
        referred_by=referred_by,
    )


def _lead_new(
    *,
    actor: User | None,
    customer: Customer,
    title: str = "",
    contact: Contact | None = None,
    source: str = Channel.MANUAL,
    campaign: str = "",
    owner: User | None = None,
    expected_amount: Any = "0",
    pipeline: Any = None,
    created_at: dt.datetime | None = None,
    referred_by: Customer | None = None,
    custom_fields: dict[str, Any] | None = None,
) -> Lead:
    """The lead and its first StageMove, unaudited: the callers audit (lead_create, lead_arrive).
    `custom_fields`, when given, must hold every required custom field (C10.1)."""
    from salesloop.pipeline.selectors import pipeline_first_stage
    from salesloop.pipeline.services import stage_move_record

    if source not in Channel.values:
        raise ValidationError({"source": f"one of {', '.join(Channel.values)}"})
    if contact is not None and contact.customer_id not in (None, customer.pk):
        raise ValidationError({"contact": "the contact belongs to another customer"})
    _check_owner(owner)
    custom_values = _custom_values("lead", custom_fields, partial=False) if custom_fields is not None else {}
    first_stage = pipeline_first_stage(pipeline)
    if first_stage is None:
        raise ValidationError({"pipeline": "the pipeline has no stages"})
    now = created_at or clock.now()
    lead = lead_build(
        customer=customer,
        contact=contact,
        first_stage=first_stage,
        title=title,
        source=source,
        campaign=campaign,
        owner=owner,
        expected_amount=expected_amount,
        created_at=now,
        referred_by=referred_by,
    )
    lead.custom_fields = custom_values
    lead.save(force_insert=True)
    stage_move_record(
        lead=lead,
        actor=actor,
        from_stage=None,
        to_stage=first_stage,
        from_status="",
        to_status=lead.status,
        at=now,
    )
    return lead


@transaction.atomic
def lead_create(
    *,
    actor: User | None,
    customer: Customer,
    title: str = "",
    contact: Contact | None = None,
    source: str = Channel.MANUAL,
    campaign: str = "",
    owner: User | None = None,
    expected_amount: Any = "0",
    pipeline: Any = None,
    created_at: dt.datetime | None = None,
    referred_by: Customer | None = None,
    custom_fields: dict[str, Any] | None = None,
) -> Lead:
    """A new lead enters the first stage of its pipeline; that entry is its first StageMove.

    Its region is the region of the customer's province; without an owner it waits in the region's
    pool until routing (C8) or a manager hands it out.
    """
    lead = _lead_new(
        actor=actor,
        customer=customer,
        title=title,
        contact=contact,
        source=source,
        campaign=campaign,
        owner=owner,
        expected_amount=expected_amount,
        pipeline=pipeline,
        created_at=created_at,
        referred_by=referred_by,
        custom_fields=custom_fields,
    )
    after = snapshot(lead, LEAD_FIELDS)
    if lead.custom_fields:
        after["custom_fields"] = lead.custom_fields
    audit_record(actor=actor, action="lead.create", target=lead, after=after)
    return lead


@transaction.atomic
def lead_arrive(
    *,
    actor: User | None,
    customer: Customer | None,
    contact: Contact | None,
    new_customer: dict[str, Any] | None = None,
    new_contact: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    **lead_fields: Any,
) -> Lead:
    """C1.4: a lead that came in through a channel, with its customer and contact — existing ones, or
    new ones made from `new_customer` / `new_contact` — written together and audited by one
    `lead.arrive` entry: who (the recording user, or none for a channel), when, the lead's fields,
    and the fields of each customer and contact created for it (`context`, e.g. the inbound event
    and its source, is kept as `via`).

    One entry per arrival instead of one per record keeps a burst of webhooks cheap; the audit
    still answers who created which record, when, with what. A phone or WeCom id another contact
    took meanwhile raises ValidationError naming the field, and nothing of the arrival is kept.
    """
    created: dict[str, Any] = {}
    if customer is None:
        if new_customer is None:
            raise ValidationError({"customer": "give an existing customer or a new one"})
        customer = _customer_new(**new_customer)
        created["customer"] = {"id": customer.pk, **snapshot(customer, CUSTOMER_FIELDS)}
    if contact is None and new_contact is not None:
        contact = _contact_new(customer=customer, **new_contact)
        created["contact"] = {"id": contact.pk, **snapshot(contact, CONTACT_FIELDS)}
    lead = _lead_new(actor=actor, customer=customer, contact=contact, **lead_fields)
    audit_record(
        actor=actor,
        action="lead.arrive",
        target=lead,
        after={**snapshot(lead, LEAD_FIELDS), "created": created, "via": context or {}},
    )
    return lead


@transaction.atomic
def lead_update(*, actor: User, lead: Lead, **changes: Any) -> Lead:
    """Edit a lead's own fields. Stage and status change only by moves (pipeline.services)."""
    if not lead_editable(user=actor, lead=lead):
        raise PermissionDenied("you may view this lead but not change it")
    before = snapshot(lead, LEAD_FIELDS)
    after_extra: dict[str, Any] = {}
    if "custom_fields" in changes:
        before["custom_fields"] = lead.custom_fields
        lead.custom_fields = _custom_values_change("lead", lead, changes.pop("custom_fields"))
        after_extra["custom_fields"] = lead.custom_fields
    for key, value in changes.items():
        if key == "title":
            lead.title = _clean_text(value, "title", required=True)
        elif key == "campaign":
            lead.campaign = _clean_text(value, "campaign", max_length=120)
        elif key == "expected_amount":
            lead.expected_amount = _clean_amount(value)
        elif key == "contact":
            if value is not None and value.customer_id not in (None, lead.customer_id):
                raise ValidationError({"contact": "the contact belongs to another customer"})
            lead.contact = value
        elif key == "owner":
            if actor.role == Role.REP:
                raise PermissionDenied("a rep cannot hand a lead to someone else")
            _check_owner(value)
            if value is not None and actor.role == Role.MANAGER and value.region_id != actor.region_id:
                raise ValidationError({"owner": "a manager hands leads to people of their own region"})
            lead.owner = value
            lead.assigned_at = clock.now() if value else None
        else:
            raise ValidationError({key: "cannot be changed here"})
    lead.save()
    if "owner" in changes:
        signals.leads_reassigned.send(sender=Lead, lead_ids=[lead.pk])  # C5, C9 follow the owner
    audit_record(
        actor=actor,
        action="lead.update",
        target=lead,
        before=before,
        after={**snapshot(lead, LEAD_FIELDS), **after_extra},
    )
    return lead


@dataclass(frozen=True)
class ContactCard:
    """A contact as one user may see it: masked, or unmasked (and then logged)."""

    name: str
    title: str
    phone: str
    wecom_external_id: str
    email: str
    unmasked: bool


def contact_card(
    *, user: User, contact: Contact | None, lead: Lead | None = None, channel: str
) -> ContactCard | None:
    """The contact of a lead for display. Unmasked for the owner, their manager and admins
    (core.roles.may_see_personal_data), and each unmasked view is written to the access log.
    Lists never call this per row: they show masked numbers (`mask_phone`) and log nothing."""
    from salesloop.core.audit import personal_data_access_record
    from salesloop.core.roles import mask_identifier, mask_phone
    from salesloop.crm.selectors import contact_personal_data_visible, lead_personal_data_visible

    if contact is None:
        return None
    if lead is not None:
        unmasked = lead_personal_data_visible(user=user, lead=lead)
    else:
        unmasked = contact_personal_data_visible(user=user, contact=contact)
    if unmasked and (contact.phone or contact.wecom_external_id or contact.email):
        personal_data_access_record(
            actor=user,
            subject=contact,
            channel=channel,
            fields=[f for f in ("phone", "wecom_external_id", "email") if getattr(contact, f)],
        )
    return ContactCard(
        name=contact.name,
        title=contact.title,
        phone=contact.phone if unmasked else mask_phone(contact.phone),
        wecom_external_id=contact.wecom_external_id
        if unmasked
        else mask_identifier(contact.wecom_external_id),
        email=contact.email if unmasked else mask_identifier(contact.email),
        unmasked=unmasked,
    )


@transaction.atomic
def lead_open(
    *,
    actor: User,
    customer: Customer | None = None,
    customer_data: dict[str, Any] | None = None,
    contact: Contact | None = None,
    contact_data: dict[str, Any] | None = None,
    owner: User | None = None,
    owner_given: bool = False,
    **lead_fields: Any,
) -> Lead:
    """A person records a new lead (API and pages), with an existing or a new customer and contact.

    A rep's lead is their own; a manager's lead goes to a person of their region or to the
    region's pool; product managers review and do not create leads.
    """
    if actor.role == Role.PRODUCT_MANAGER and not actor.is_superuser:
        raise PermissionDenied("product managers do not create leads")
    if (customer is None) == (customer_data is None):
        raise ValidationError({"customer": "give either customer_id or a new customer"})
    if contact is not None and contact_data is not None:
        raise ValidationError({"contact": "give either contact_id or a new contact, not both"})
    if actor.role == Role.REP:
        if owner_given and owner is not None and owner.pk != actor.pk:
            raise ValidationError({"owner_id": "a rep records leads for themself"})
        owner = actor
    elif actor.role == Role.MANAGER and owner is not None and owner.region_id != actor.region_id:
        raise ValidationError({"owner_id": "a manager hands leads to people of their own region"})
    if customer is None:
        assert customer_data is not None
        customer = customer_create(actor=actor, **customer_data)
    if contact_data is not None:
        contact = contact_create(actor=actor, customer=customer, **contact_data)
    return lead_create(actor=actor, customer=customer, contact=contact, owner=owner, **lead_fields)
