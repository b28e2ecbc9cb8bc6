"""Reads of health scores, scoped by the acting user through crm.selectors (DESIGN.md rule 4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import BooleanField, Case, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce

from salesloop.core import clock
from salesloop.crm.models import Customer, Lead
from salesloop.crm.selectors import customer_get, lead_get
from salesloop.health.models import HealthModel, HealthModelStatus, LeadHealth
from salesloop.health.scoring import DEFAULT_RED_THRESHOLD
from salesloop.health.services import config_in_force

HEALTH_FILTERS = ("red", "ok", "unknown")


def red_threshold_expression() -> Coalesce:
    """The red line in force, as a scalar subquery: lists compare `Lead.health_score` with it in
    their own query, so the badge costs no query at all."""
    in_force = (
        HealthModel.objects.filter(status=HealthModelStatus.PUBLISHED, effective_at__lte=clock.now())
        .order_by("-effective_at", "-version")
        .values("red_threshold")[:1]
    )
    return Coalesce(Subquery(in_force), Value(DEFAULT_RED_THRESHOLD))


def with_health_red(leads: QuerySet[Lead]) -> QuerySet[Lead]:
    """Adds `health_red`: the lead's score is below the red line in force (False when unknown)."""
    return leads.annotate(
        health_red=Case(
            When(health_score__lt=red_threshold_expression(), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        )
    )


def health_filter(leads: QuerySet[Lead], value: str) -> QuerySet[Lead]:
    """`red`: below the red line in force; `ok`: at or above it; `unknown`: no fact yet."""
    if value == "red":
        return leads.filter(health_score__lt=red_threshold_expression())
    if value == "ok":
        return leads.filter(health_score__gte=red_threshold_expression())
    return leads.filter(health_score__isnull=True)


@dataclass(frozen=True)
class LeadHealthView:
    lead: Lead
    health: LeadHealth | None
    red_threshold: int

    @property
    def red(self) -> bool:
        return self.lead.health_score is not None and self.lead.health_score < self.red_threshold


def lead_health_get(*, user: Any, lead_id: int) -> LeadHealthView:
    """The lead's latest score with its breakdown, or 404 when out of scope."""
    lead = lead_get(user=user, lead_id=lead_id)
    health = LeadHealth.objects.filter(lead_id=lead.pk).first()
    return LeadHealthView(lead=lead, health=health, red_threshold=config_in_force().red_threshold)


@dataclass(frozen=True)
class CustomerHealthView:
    customer: Customer
    red_threshold: int
    leads: list[Lead]  # the open leads the user may see, with their scores

    @property
    def red(self) -> bool:
        return self.customer.health_score is not None and self.customer.health_score < self.red_threshold


def customer_health_get(*, user: Any, customer_id: int) -> CustomerHealthView:
    from salesloop.crm.selectors import leads_visible_to

    customer = customer_get(user=user, customer_id=customer_id)
    leads = list(
        leads_visible_to(user)
        .filter(Q(customer_id=customer.pk), status="open", merged_into__isnull=True)
        .order_by("-id")[:100]
    )
    return CustomerHealthView(customer=customer, red_threshold=config_in_force().red_threshold, leads=leads)


def health_models(*, limit: int = 50) -> list[HealthModel]:
    return list(HealthModel.objects.select_related("created_by", "published_by").order_by("-version")[:limit])
