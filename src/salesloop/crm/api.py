"""REST endpoints for leads, customers and contacts. Thin: parse, scope, call a service or selector."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Field, Query, Router, Schema, Status

from salesloop.accounts.geography import province_code
from salesloop.accounts.models import Province, User
from salesloop.core.roles import mask_identifier, mask_phone
from salesloop.core.schemas import RecordId, Text
from salesloop.crm import selectors, services
from salesloop.crm.models import Channel, CompanySize, Contact, Customer, Lead, LeadStatus

# The API layer is an entry point: it may call any app's services. Changes of hands go through
# routing so that each is a traced assignment (C8.2).
from salesloop.routing.services import lead_reassign, lead_route
from salesloop.workspace.filters import custom_filter_params

leads_router = Router()
customers_router = Router()
contacts_router = Router()

Limit = Field(default=None, ge=1, le=200, description="page size (default 50)")
# C10.1: the OpenAPI document types these per field (workspace.openapi)
CUSTOM_FIELDS_DOC = "custom field values by name (SPEC C10.1); typed per field in this document"
CUSTOM_FIELDS_IN_DOC = "custom field values by name (C10.1); unknown names are refused"


# ---- output schemas -------------------------------------------------------------------------


class StageOut(Schema):
    code: str
    name: str
    name_en: str
    position: int


class UserRef(Schema):
    id: int
    username: str
    display_name: str


class RegionRef(Schema):
    id: int
    name: str


class CustomerOut(Schema):
    id: int
    name: str
    industry: str
    size: str
    province: str | None
    city: str
    created_at: dt.datetime
    custom_fields: dict[str, Any] = Field(default_factory=dict, description=CUSTOM_FIELDS_DOC)


class ContactOut(Schema):
    id: int
    customer_id: int | None
    name: str
    title: str
    phone: str
    wecom_external_id: str
    email: str
    masked: bool = Field(description="true when personal data is masked for this caller")


class LeadOut(Schema):
    id: int
    title: str
    customer: CustomerOut
    contact: ContactOut | None
    source: str
    campaign: str
    owner: UserRef | None
    region: RegionRef | None
    pipeline_id: int
    stage: StageOut
    status: str
    lost_reason: str
    expected_amount: Decimal
    created_at: dt.datetime
    stage_entered_at: dt.datetime
    assigned_at: dt.datetime | None
    closed_at: dt.datetime | None
    custom_fields: dict[str, Any] = Field(default_factory=dict, description=CUSTOM_FIELDS_DOC)
    health_score: int | None = Field(default=None, description="0-100 (SPEC C3); null until a fact")
    health_red: bool = Field(default=False, description="below the red line in force (/leads/{id}/health)")


class LeadPage(Schema):
    items: list[LeadOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


class CustomerPage(Schema):
    items: list[CustomerOut]
    next_cursor: str | None


class ContactPage(Schema):
    items: list[ContactOut]
    next_cursor: str | None


# Outputs are plain dicts: ninja validates them once against the response schema, and the lead
# list, the hottest endpoint, skips even that and renders its dicts straight to JSON.


def customer_out(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.pk,
        "name": customer.name,
        "industry": customer.industry,
        "size": customer.size,
        "province": customer.province.name if customer.province_id and customer.province else None,
        "city": customer.city,
        "created_at": customer.created_at,
        "custom_fields": customer.custom_fields or {},
    }


def contact_masked_out(contact: Contact) -> dict[str, Any]:
    """Lists show every contact masked and log nothing; the detail endpoints unmask (and log)."""
    return {
        "id": contact.pk,
        "customer_id": contact.customer_id,
        "name": contact.name,
        "title": contact.title,
        "phone": mask_phone(contact.phone),
        "wecom_external_id": mask_identifier(contact.wecom_external_id),
        "email": mask_identifier(contact.email),
        "masked": True,
    }


def contact_card_out(user: User, contact: Contact, lead: Lead | None) -> dict[str, Any]:
    card = services.contact_card(user=user, contact=contact, lead=lead, channel="api")
    assert card is not None
    return {
        "id": contact.pk,
        "customer_id": contact.customer_id,
        "name": card.name,
        "title": card.title,
        "phone": card.phone,
        "wecom_external_id": card.wecom_external_id,
        "email": card.email,
        "masked": not card.unmasked,
    }


def lead_out(lead: Lead, contact: dict[str, Any] | None) -> dict[str, Any]:
    owner = lead.owner
    return {
        "id": lead.pk,
        "title": lead.title,
        "customer": customer_out(lead.customer),
        "contact": contact,
        "source": lead.source,
        "campaign": lead.campaign,
        "owner": {"id": owner.pk, "username": owner.username, "display_name": str(owner)} if owner else None,
        "region": {"id": lead.region.pk, "name": lead.region.name} if lead.region else None,
        "pipeline_id": lead.pipeline_id,
        "stage": {
            "code": lead.stage.code,
            "name": lead.stage.name,
            "name_en": lead.stage.name_en,
            "position": lead.stage.position,
        },
        "status": lead.status,
        "lost_reason": lead.lost_reason,
        "expected_amount": lead.expected_amount,
        "created_at": lead.created_at,
        "stage_entered_at": lead.stage_entered_at,
        "assigned_at": lead.assigned_at,
        "closed_at": lead.closed_at,
        "custom_fields": lead.custom_fields or {},
        "health_score": lead.health_score,
        "health_red": _health_red(lead),
    }


def _health_red(lead: Lead) -> bool:
    # Lists and the detail annotate it in their own query (health.selectors.with_health_red).
    red = getattr(lead, "health_red", None)
    if red is None:
        from salesloop.health.services import config_in_force

        red = lead.health_score is not None and lead.health_score < config_in_force().red_threshold
    return bool(red)


# ---- input schemas --------------------------------------------------------------------------


class LeadFilterQuery(Schema):
    """The filters of a lead list — the list itself and its export read the same ones."""

    stage: Text(40) | None = Field(default=None, description="stage code, e.g. solution_demo")  # type: ignore[valid-type]
    owner: RecordId | None = None
    region: RecordId | None = None
    source: Channel | None = None
    status: LeadStatus | None = None
    q: Text(100) | None = Field(default=None, description="text in title, company, contact; or phone digits")  # type: ignore[valid-type]
    unassigned: bool = False
    health: Literal["red", "ok", "unknown"] | None = Field(
        default=None, description="red: below the red line in force; ok: at or above it; unknown: no fact yet"
    )


def lead_filters_of(query: LeadFilterQuery, request: HttpRequest) -> selectors.LeadFilters:
    return selectors.LeadFilters(
        stage=query.stage,
        owner=query.owner,
        region=query.region,
        source=query.source.value if query.source else None,
        status=query.status.value if query.status else None,
        q=query.q,
        unassigned=query.unassigned,
        health=query.health,
        custom=custom_filter_params(request.GET) or None,  # cf.<name>, cf.<name>.min/.max (C10.1)
    )


class LeadQuery(LeadFilterQuery):
    cursor: Text(200) | None = None  # type: ignore[valid-type]
    limit: int | None = Limit


class CustomerIn(Schema):
    name: Text(200)  # type: ignore[valid-type]
    industry: Text(40) = ""  # type: ignore[valid-type]
    size: CompanySize | None = None
    province: Text(20) | None = Field(default=None, description="province name (广东, 广东省) or code (44)")  # type: ignore[valid-type]
    city: Text(40) = ""  # type: ignore[valid-type]
    custom_fields: dict[str, Any] = Field(default_factory=dict, description=CUSTOM_FIELDS_IN_DOC)


class CustomerPatch(Schema):
    name: Text(200) | None = None  # type: ignore[valid-type]
    industry: Text(40) | None = None  # type: ignore[valid-type]
    size: CompanySize | None = None
    province: Text(20) | None = None  # type: ignore[valid-type]
    city: Text(40) | None = None  # type: ignore[valid-type]
    custom_fields: dict[str, Any] | None = Field(
        default=None, description="custom field values by name (C10.1); null or empty clears a field"
    )


class ContactIn(Schema):
    name: Text(80)  # type: ignore[valid-type]
    title: Text(80) = ""  # type: ignore[valid-type]
    phone: Text(40) = Field(default="", description="any common writing; stored as E.164")  # type: ignore[valid-type]
    wecom_external_id: Text(64) = ""  # type: ignore[valid-type]
    email: Text(254) = ""  # type: ignore[valid-type]


class ContactCreateIn(ContactIn):
    customer_id: RecordId | None = None


class ContactPatch(Schema):
    name: Text(80) | None = None  # type: ignore[valid-type]
    title: Text(80) | None = None  # type: ignore[valid-type]
    phone: Text(40) | None = None  # type: ignore[valid-type]
    wecom_external_id: Text(64) | None = None  # type: ignore[valid-type]
    email: Text(254) | None = None  # type: ignore[valid-type]


class LeadIn(Schema):
    title: Text(200) = ""  # type: ignore[valid-type]
    customer_id: RecordId | None = None
    customer: CustomerIn | None = None
    contact_id: RecordId | None = None
    contact: ContactIn | None = None
    source: Channel = Channel.MANUAL
    campaign: Text(120) = ""  # type: ignore[valid-type]
    owner_id: RecordId | None = None
    expected_amount: Decimal = Field(default=Decimal("0"), ge=0, max_digits=14, decimal_places=2)
    custom_fields: dict[str, Any] = Field(default_factory=dict, description=CUSTOM_FIELDS_IN_DOC)


class LeadPatch(Schema):
    title: Text(200) | None = None  # type: ignore[valid-type]
    campaign: Text(120) | None = None  # type: ignore[valid-type]
    contact_id: RecordId | None = None
    owner_id: RecordId | None = Field(
        default=None, description="reassign (managers, directors, admins): needs assignment_reason"
    )
    assignment_reason: Text(2000) | None = Field(  # type: ignore[valid-type]
        default=None, description="why the lead changes hands; kept with the assignment's trace"
    )
    expected_amount: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)
    custom_fields: dict[str, Any] | None = Field(
        default=None, description="custom field values by name (C10.1); null or empty clears a field"
    )


def _province(value: str | None) -> Province | None:
    if not value:
        return None
    code = value if value.isdigit() else province_code(value)
    province = Province.objects.filter(code=code).first() if code else None
    if province is None:
        raise ValidationError({"province": f"no province {value!r}"})
    return province


def _owner(user: User, owner_id: int) -> User:
    owner = User.objects.filter(pk=owner_id, is_active=True).first()
    if owner is None:
        raise ValidationError({"owner_id": "no such active user"})
    return owner


def _visible_customer(user: User, customer_id: int) -> Customer:
    customer = selectors.customers_visible_to(user).filter(pk=customer_id).first()
    if customer is None:
        raise ValidationError({"customer_id": "no such customer"})
    return customer


def _visible_contact(user: User, contact_id: int) -> Contact:
    contact = selectors.contacts_visible_to(user).filter(pk=contact_id).first()
    if contact is None:
        raise ValidationError({"contact_id": "no such contact"})
    return contact


# ---- leads ----------------------------------------------------------------------------------


@leads_router.get(
    "",
    response=LeadPage,
    summary="List leads in my scope (newest first, keyset pages)",
    description="Custom field filters: `cf.<name>=value` (text contains, choice equals, multi-choice "
    "has), `cf.<name>.min` / `cf.<name>.max` (numbers, money, dates, inclusive); see docs/custom-fields.md.",
)
def lead_list(request: HttpRequest, query: Query[LeadQuery]) -> HttpResponse:
    filters = lead_filters_of(query, request)
    page = selectors.lead_list(
        user=request.auth,  # type: ignore[attr-defined]
        filters=filters,
        cursor=query.cursor,
        limit=query.limit or settings.SALESLOOP_PAGE_SIZE,
    )
    items = [
        lead_out(lead, contact_masked_out(lead.contact) if lead.contact else None) for lead in page.items
    ]
    # Rendered directly: these dicts are built from validated records into the documented shape
    # (LeadPage); validating them again would cost more than the query.
    return JsonResponse(
        {"items": items, "next_cursor": page.next_cursor}, json_dumps_params={"ensure_ascii": False}
    )


@leads_router.get(
    "/{lead_id}", response=LeadOut, summary="One lead; personal data unmasked if you may see it"
)
def lead_detail(request: HttpRequest, lead_id: RecordId) -> LeadOut:
    user = request.auth  # type: ignore[attr-defined]
    lead = selectors.lead_get(user=user, lead_id=lead_id)
    return lead_out(lead, contact_card_out(user, lead.contact, lead) if lead.contact else None)


@leads_router.post("", response={201: LeadOut}, summary="Record a new lead")
def lead_create(request: HttpRequest, payload: LeadIn) -> Status[LeadOut]:
    user = request.auth  # type: ignore[attr-defined]
    with transaction.atomic():
        lead = _lead_open(user, payload)
        # C8: a lead recorded by hand is routed like any other (or, given an owner, traced as such).
        lead_route(lead=lead, actor=user)
    lead = selectors.lead_get(user=user, lead_id=lead.pk)
    return Status(201, lead_out(lead, contact_card_out(user, lead.contact, lead) if lead.contact else None))


def _lead_open(user: Any, payload: LeadIn) -> Any:
    return services.lead_open(
        actor=user,
        customer=_visible_customer(user, payload.customer_id) if payload.customer_id else None,
        customer_data=(
            {
                **payload.customer.dict(exclude={"province", "size"}),  # custom_fields included
                "size": payload.customer.size.value if payload.customer.size else "",
                "province": _province(payload.customer.province),
            }
            if payload.customer
            else None
        ),
        contact=_visible_contact(user, payload.contact_id) if payload.contact_id else None,
        contact_data=payload.contact.dict() if payload.contact else None,
        owner=_owner(user, payload.owner_id) if payload.owner_id else None,
        owner_given=payload.owner_id is not None,
        title=payload.title,
        source=payload.source.value,
        campaign=payload.campaign,
        expected_amount=payload.expected_amount,
        custom_fields=payload.custom_fields,
    )


@leads_router.patch("/{lead_id}", response=LeadOut, summary="Change a lead's own fields")
def lead_update(request: HttpRequest, lead_id: RecordId, payload: LeadPatch) -> LeadOut:
    user = request.auth  # type: ignore[attr-defined]
    lead = selectors.lead_get(user=user, lead_id=lead_id)
    changes: dict[str, Any] = payload.dict(exclude_unset=True)
    if "contact_id" in changes:
        contact_id = changes.pop("contact_id")
        changes["contact"] = _visible_contact(user, contact_id) if contact_id else None
    reason = changes.pop("assignment_reason", None) or ""
    reassign = "owner_id" in changes
    owner = None
    if reassign:
        owner_id = changes.pop("owner_id")
        owner = _owner(user, owner_id) if owner_id else None
    if "custom_fields" in changes and changes["custom_fields"] is None:
        del changes["custom_fields"]
    for required in ("title", "expected_amount"):
        if required in changes and changes[required] is None:
            raise ValidationError({required: "cannot be null"})
    with transaction.atomic():
        if changes:
            services.lead_update(actor=user, lead=lead, **changes)
        if reassign and (owner.pk if owner else None) != lead.owner_id:
            # A change of hands is an assignment (C8.2), traced with the person and the reason.
            try:
                lead_reassign(actor=user, lead=lead, owner=owner, reason=reason)
            except ValidationError as exc:
                errors = exc.message_dict
                if "reason" in errors:  # this endpoint calls the reason assignment_reason
                    errors["assignment_reason"] = errors.pop("reason")
                raise ValidationError(errors) from exc
    lead = selectors.lead_get(user=user, lead_id=lead_id)
    return lead_out(lead, contact_card_out(user, lead.contact, lead) if lead.contact else None)


# ---- customers ------------------------------------------------------------------------------


class CustomerQuery(Schema):
    q: Text(100) | None = None  # type: ignore[valid-type]
    cursor: Text(200) | None = None  # type: ignore[valid-type]
    limit: int | None = Limit


@customers_router.get("", response=CustomerPage, summary="Customers with a lead in my scope")
def customer_list(request: HttpRequest, query: Query[CustomerQuery]) -> CustomerPage:
    customers = selectors.customers_visible_to(request.auth).select_related("province")  # type: ignore[attr-defined]
    if query.q:
        customers = customers.filter(name__icontains=query.q)
    page = selectors.keyset_page(
        customers, cursor=query.cursor, limit=query.limit or settings.SALESLOOP_PAGE_SIZE
    )
    return CustomerPage(items=[customer_out(c) for c in page.items], next_cursor=page.next_cursor)


@customers_router.get("/{customer_id}", response=CustomerOut)
def customer_detail(request: HttpRequest, customer_id: RecordId) -> CustomerOut:
    return customer_out(selectors.customer_get(user=request.auth, customer_id=customer_id))  # type: ignore[attr-defined]


@customers_router.post("", response={201: CustomerOut})
def customer_create(request: HttpRequest, payload: CustomerIn) -> Status[CustomerOut]:
    user = request.auth  # type: ignore[attr-defined]
    _may_write(user)
    customer = services.customer_create(
        actor=user,
        name=payload.name,
        industry=payload.industry,
        size=payload.size.value if payload.size else "",
        province=_province(payload.province),
        city=payload.city,
        custom_fields=payload.custom_fields,
    )
    return Status(201, customer_out(customer))


@customers_router.patch("/{customer_id}", response=CustomerOut)
def customer_update(request: HttpRequest, customer_id: RecordId, payload: CustomerPatch) -> CustomerOut:
    user = request.auth  # type: ignore[attr-defined]
    customer = selectors.customer_get(user=user, customer_id=customer_id)
    _may_write(user)
    changes: dict[str, Any] = payload.dict(exclude_unset=True)
    if "province" in changes:
        changes["province"] = _province(changes["province"])
    if "size" in changes:
        changes["size"] = changes["size"].value if changes["size"] else ""
    if "name" in changes and changes["name"] is None:
        raise ValidationError({"name": "cannot be null"})
    if "custom_fields" in changes and changes["custom_fields"] is None:
        del changes["custom_fields"]
    return customer_out(services.customer_update(actor=user, customer=customer, **changes))


class ReferralIn(Schema):
    name: Text(80)  # type: ignore[valid-type]
    phone: Text(40) = ""  # type: ignore[valid-type]
    company: Text(200) = ""  # type: ignore[valid-type]
    email: Text(254) = ""  # type: ignore[valid-type]
    message: Text(2000) = ""  # type: ignore[valid-type]


class ReferralOut(Schema):
    event_id: int
    status: str
    lead_id: int | None


@customers_router.post(
    "/{customer_id}/referrals",
    response={201: ReferralOut},
    summary="Record a person this customer referred (老客转介)",
)
def customer_referral(
    request: HttpRequest, customer_id: RecordId, payload: ReferralIn
) -> Status[dict[str, Any]]:
    from salesloop.intake.services import referral_create

    user = request.auth  # type: ignore[attr-defined]
    referrer = selectors.customer_get(user=user, customer_id=customer_id)
    outcome = referral_create(actor=user, referrer=referrer, **payload.dict())
    return Status(201, outcome.as_json())


# ---- contacts -------------------------------------------------------------------------------


class ContactQuery(Schema):
    customer_id: RecordId | None = None
    cursor: Text(200) | None = None  # type: ignore[valid-type]
    limit: int | None = Limit


@contacts_router.get("", response=ContactPage, summary="Contacts in my scope (masked; open one to unmask)")
def contact_list(request: HttpRequest, query: Query[ContactQuery]) -> ContactPage:
    contacts = selectors.contacts_visible_to(request.auth)  # type: ignore[attr-defined]
    if query.customer_id:
        contacts = contacts.filter(customer_id=query.customer_id)
    page = selectors.keyset_page(
        contacts, cursor=query.cursor, limit=query.limit or settings.SALESLOOP_PAGE_SIZE
    )
    return ContactPage(items=[contact_masked_out(c) for c in page.items], next_cursor=page.next_cursor)


@contacts_router.get(
    "/{contact_id}", response=ContactOut, summary="One contact; unmasked (and logged) if allowed"
)
def contact_detail(request: HttpRequest, contact_id: RecordId) -> ContactOut:
    user = request.auth  # type: ignore[attr-defined]
    return contact_card_out(user, selectors.contact_get(user=user, contact_id=contact_id), None)


@contacts_router.post("", response={201: ContactOut})
def contact_create(request: HttpRequest, payload: ContactCreateIn) -> Status[ContactOut]:
    user = request.auth  # type: ignore[attr-defined]
    _may_write(user)
    customer = _visible_customer(user, payload.customer_id) if payload.customer_id else None
    contact = services.contact_create(actor=user, customer=customer, **payload.dict(exclude={"customer_id"}))
    return Status(201, contact_card_out(user, contact, None))


@contacts_router.patch("/{contact_id}", response=ContactOut)
def contact_update(request: HttpRequest, contact_id: RecordId, payload: ContactPatch) -> ContactOut:
    user = request.auth  # type: ignore[attr-defined]
    contact = selectors.contact_get(user=user, contact_id=contact_id)
    _may_write(user)
    changes = {
        k: ("" if v is None and k != "name" else v) for k, v in payload.dict(exclude_unset=True).items()
    }
    if "name" in changes and changes["name"] is None:
        raise ValidationError({"name": "cannot be null"})
    contact = services.contact_update(actor=user, contact=contact, **changes)
    return contact_card_out(user, contact, None)


def _may_write(user: User) -> None:
    from django.core.exceptions import PermissionDenied

    from salesloop.core.roles import Role

    if user.role == Role.PRODUCT_MANAGER and not user.is_superuser:
        raise PermissionDenied("product managers review; they do not change customer records")
