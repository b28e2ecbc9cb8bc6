"""Reads of customers, contacts and leads — always scoped to the acting user (DESIGN.md rule 4)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import Http404

from salesloop.core.roles import Role, may_see_personal_data, sees_all
from salesloop.crm.models import Contact, Customer, Lead


def leads_visible_to(user: Any) -> QuerySet[Lead]:
    """rep → own leads; manager → leads of their region and leads their region's reps own;
    director, product manager, admin → all; anyone else → none."""
    leads = Lead.objects.all()
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return leads.none()
    if sees_all(user):
        return leads
    if user.role == Role.MANAGER and user.region_id:
        return leads.filter(Q(region_id=user.region_id) | Q(owner__region_id=user.region_id))
    if user.role == Role.REP:
        return leads.filter(owner_id=user.pk)
    return leads.none()


def customers_visible_to(user: Any) -> QuerySet[Customer]:
    if not user.is_authenticated:
        return Customer.objects.none()
    if sees_all(user):
        return Customer.objects.all()
    return Customer.objects.filter(Exists(leads_visible_to(user).filter(customer_id=OuterRef("pk"))))


def contacts_visible_to(user: Any) -> QuerySet[Contact]:
    if not user.is_authenticated:
        return Contact.objects.none()
    if sees_all(user):
        return Contact.objects.all()
    return Contact.objects.filter(
        Exists(leads_visible_to(user).filter(customer_id=OuterRef("customer_id")))
        | Exists(leads_visible_to(user).filter(contact_id=OuterRef("pk")))
    )


@dataclass
class LeadFilters:
    stage: str | None = None  # stage code
    owner: int | None = None
    region: int | None = None
    source: str | None = None
    status: str | None = None
    q: str | None = None
    unassigned: bool = False
    health: str | None = None  # red | ok | unknown (health.selectors.health_filter)
    # custom field filters as query parameters (`cf.<name>`, `cf.<name>.min`, ...; workspace.filters)
    custom: dict[str, str] | None = None

    def as_query(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "", False)}


@dataclass
class Page:
    items: list[Any]
    next_cursor: str | None
    filters: dict[str, Any] = field(default_factory=dict)


class FilterError(ValueError):
    """A filter value that cannot be applied; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class CursorError(FilterError):
    def __init__(self, message: str) -> None:
        super().__init__("cursor", message)


def cursor_encode(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def cursor_decode(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        kind, _, value = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
        if kind != "id":
            raise ValueError
        last_id = int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise CursorError("cursor is not one this server issued") from exc
    if not 0 <= last_id < 2**63:
        raise CursorError("cursor is not one this server issued")
    return last_id


def lead_list(
    *, user: Any, filters: LeadFilters, cursor: str | None = None, limit: int | None = None
) -> Page:
    """One page of leads, newest first, by keyset (`id < last id`): the cost of page 1,000 is the
    cost of page 1, and nothing counts the whole table."""
    limit = limit or settings.SALESLOOP_PAGE_SIZE
    leads = leads_filtered(user=user, filters=filters)
    # Three joins, and the tiny stage / region / province tables fetched by id afterwards: with all
    # seven tables joined, PostgreSQL spent 10-38 ms planning a query that runs in 1 ms.
    leads = leads.select_related("customer", "contact", "owner").prefetch_related(
        "stage", "region", "customer__province"
    )
    from salesloop.health.selectors import with_health_red  # the red badge, in the same query (C3.3)

    leads = with_health_red(leads)
    page = keyset_page(leads, cursor=cursor, limit=limit)
    page.filters = filters.as_query()
    return page


def leads_filtered(*, user: Any, filters: LeadFilters) -> QuerySet[Lead]:
    """The leads in the user's scope that pass the filters (lists and exports share this)."""
    # A lead merged into another lives on inside the survivor; lists show the survivor only.
    leads = leads_visible_to(user).filter(merged_into__isnull=True)
    if filters.stage:
        # Resolve the code to ids first so the (stage, -id) index serves the page without a join.
        stage_model = Lead._meta.get_field("stage").related_model
        stage_ids = list(stage_model.objects.filter(code=filters.stage).values_list("id", flat=True))
        if not stage_ids:
            raise FilterError("stage", f"no stage {filters.stage!r}")
        leads = leads.filter(stage_id__in=stage_ids)
    if filters.owner:
        leads = leads.filter(owner_id=filters.owner)
    if filters.unassigned:
        leads = leads.filter(owner__isnull=True)
    if filters.region:
        leads = leads.filter(region_id=filters.region)
    if filters.source:
        leads = leads.filter(source=filters.source)
    if filters.status:
        leads = leads.filter(status=filters.status)
    if filters.q:
        leads = leads.filter(_text_query(filters.q))
    if filters.health:
        from salesloop.health.selectors import HEALTH_FILTERS, health_filter

        if filters.health not in HEALTH_FILTERS:
            raise FilterError("health", f"no health filter {filters.health!r}")
        leads = health_filter(leads, filters.health)
    if filters.custom:
        from salesloop.workspace.filters import lead_custom_conditions  # C10.1, one query for definitions

        for condition in lead_custom_conditions(filters.custom):
            leads = leads.filter(condition)
    return leads


def keyset_page(records: QuerySet[Any], *, cursor: str | None, limit: int) -> Page:
    """Newest first by id, `limit` rows after the cursor; one query, one row fetched beyond the page
    to know whether there is a next one."""
    if cursor:
        records = records.filter(id__lt=cursor_decode(cursor))
    rows = list(records.order_by("-id")[: limit + 1])
    next_cursor = cursor_encode(rows[limit - 1].pk) if len(rows) > limit else None
    return Page(items=rows[:limit], next_cursor=next_cursor)


def _text_query(text: str) -> Q:
    text = text.strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    query = Q(title__icontains=text) | Q(customer__name__icontains=text) | Q(contact__name__icontains=text)
    if len(digits) >= 4 and len(digits) >= len(text.replace(" ", "").replace("-", "")) - 1:
        query |= Q(contact__phone__contains=digits)
    return query


def lead_get(*, user: Any, lead_id: int) -> Lead:
    """The lead, or 404 when it does not exist *or* the user may not see it — never a leak."""
    from salesloop.health.selectors import with_health_red

    lead = (
        with_health_red(leads_visible_to(user))
        .select_related(
            "customer",
            "customer__province",
            "contact",
            "owner",
            "owner__region",
            "stage",
            "pipeline",
            "region",
        )
        .filter(pk=lead_id)
        .first()
    )
    if lead is None:
        raise Http404("lead not found")
    return lead


def lead_stage_counts(*, user: Any, only_own: bool = False) -> dict[int, int]:
    """Open leads per stage id, for the home page's funnel (one grouped query)."""
    leads = leads_visible_to(user).filter(status="open")
    if only_own:
        leads = leads.filter(owner_id=user.pk)
    return dict(leads.values_list("stage_id").annotate(n=Count("id")).values_list("stage_id", "n"))


def lead_personal_data_visible(*, user: Any, lead: Lead) -> bool:
    return may_see_personal_data(
        user,
        owner_id=lead.owner_id,
        owner_region_id=lead.owner.region_id if lead.owner_id and lead.owner else None,
        record_region_id=lead.region_id,
    )


def customer_get(*, user: Any, customer_id: int) -> Customer:
    customer = customers_visible_to(user).select_related("province").filter(pk=customer_id).first()
    if customer is None:
        raise Http404("customer not found")
    return customer


def contact_get(*, user: Any, contact_id: int) -> Contact:
    contact = contacts_visible_to(user).select_related("customer").filter(pk=contact_id).first()
    if contact is None:
        raise Http404("contact not found")
    return contact


def contact_personal_data_visible(*, user: Any, contact: Contact) -> bool:
    """Unmasked if the user may see personal data on any lead of this contact or its customer."""
    from salesloop.core.roles import is_admin

    if is_admin(user):
        return True
    leads = Lead.objects.filter(Q(contact_id=contact.pk) | Q(customer_id=contact.customer_id))
    for lead in leads.select_related("owner")[:20]:
        if lead_personal_data_visible(user=user, lead=lead):
            return True
    return False


def lead_editable(*, user: Any, lead: Lead) -> bool:
    """Who may change a lead they can see: its owner, a manager over it, a director or an admin.
    Product managers review; they do not work leads."""
    if user.role == Role.PRODUCT_MANAGER and not user.is_superuser:
        return False
    return leads_visible_to(user).filter(pk=lead.pk).exists()
