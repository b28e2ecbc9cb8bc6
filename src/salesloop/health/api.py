"""REST endpoints of the health score (SPEC C3): a lead's and a customer's score with the breakdown,
and the versions of the scoring configuration. Thin: the pages call the same services/selectors."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Router, Schema, Status

from salesloop.core import clock
from salesloop.core.schemas import RecordId, Text
from salesloop.health import selectors, services
from salesloop.health.models import HealthModel

router = Router()  # /health
lead_router = Router()  # /leads/{id}/health
customer_router = Router()  # /customers/{id}/health


class SignalOut(Schema):
    signal: str
    label: str
    raw: float
    normalised: float
    weight: int
    contribution: float
    inputs: dict[str, float]


class LeadHealthOut(Schema):
    lead_id: int
    score: int | None = Field(description="0-100; null while the lead has no engagement fact")
    red: bool = Field(description="below the red line of the configuration in force")
    red_threshold: int
    red_since: dt.datetime | None
    computed_at: dt.datetime | None
    model_version: int | None
    breakdown: list[SignalOut]
    explanation: dict[str, Any] | None = Field(description="the stored `health_score` explanation")


class CustomerLeadScore(Schema):
    lead_id: int
    title: str
    score: int | None
    red: bool


class CustomerHealthOut(Schema):
    customer_id: int
    score: int | None = Field(
        description="the best score of the customer's open leads; null if none is scored"
    )
    red: bool
    red_threshold: int
    leads: list[CustomerLeadScore] = Field(description="the open leads you may see")


class HealthModelOut(Schema):
    id: int
    version: int
    status: str
    in_force: bool
    weights: dict[str, int]
    windows: dict[str, int]
    targets: dict[str, float]
    half_life_days: int
    red_threshold: int
    note: str
    created_at: dt.datetime
    effective_at: dt.datetime | None
    published_at: dt.datetime | None


class HealthModelIn(Schema):
    weights: dict[Text(40), int]  # type: ignore[valid-type]
    windows: dict[Text(40), int]  # type: ignore[valid-type]
    targets: dict[Text(40), float]  # type: ignore[valid-type]
    half_life_days: int
    red_threshold: int = 40
    note: Text(2000) = ""  # type: ignore[valid-type]
    publish: bool = Field(default=False, description="publish at once (in force from effective_at)")
    effective_at: dt.datetime | None = Field(default=None, description="when it takes effect; default now")


class PublishIn(Schema):
    effective_at: dt.datetime | None = None


def _signals(breakdown: dict[str, Any] | None) -> list[dict[str, Any]]:
    from salesloop.health.scoring import SIGNAL_LABELS

    return [
        {**signal, "label": str(SIGNAL_LABELS.get(signal["signal"], signal["signal"]))}
        for signal in (breakdown or {}).get("signals", [])
    ]


def lead_health_out(view: selectors.LeadHealthView) -> dict[str, Any]:
    health = view.health
    return {
        "lead_id": view.lead.pk,
        "score": view.lead.health_score,
        "red": view.red,
        "red_threshold": view.red_threshold,
        "red_since": health.red_since if health else None,
        "computed_at": health.computed_at if health else None,
        "model_version": health.model_version if health else None,
        "breakdown": _signals(health.breakdown if health else None),
        "explanation": health.breakdown if health else None,
    }


def _model_out(model: HealthModel, in_force_id: int | None) -> dict[str, Any]:
    return {
        "id": model.pk,
        "version": model.version,
        "status": model.status,
        "in_force": model.pk == in_force_id,
        "weights": model.weights,
        "windows": model.windows,
        "targets": model.targets,
        "half_life_days": model.half_life_days,
        "red_threshold": model.red_threshold,
        "note": model.note,
        "created_at": model.created_at,
        "effective_at": model.effective_at,
        "published_at": model.published_at,
    }


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is not None and timezone.is_naive(moment):
        return timezone.make_aware(moment, clock.org_tz())
    return moment


def _configurer(request: HttpRequest) -> Any:
    user = request.auth  # type: ignore[attr-defined]
    if not services.may_configure(user):
        raise PermissionDenied(
            "Only a sales director or an administrator may see or change the health model."
        )
    return user


@lead_router.get(
    "/{lead_id}/health", response=LeadHealthOut, summary="A lead's health score and its breakdown"
)
def lead_health(request: HttpRequest, lead_id: RecordId) -> dict[str, Any]:
    view = selectors.lead_health_get(user=request.auth, lead_id=lead_id)  # type: ignore[attr-defined]
    return lead_health_out(view)


@customer_router.get(
    "/{customer_id}/health",
    response=CustomerHealthOut,
    summary="A customer's health: the best of its open leads",
)
def customer_health(request: HttpRequest, customer_id: RecordId) -> dict[str, Any]:
    view = selectors.customer_health_get(user=request.auth, customer_id=customer_id)  # type: ignore[attr-defined]
    return {
        "customer_id": view.customer.pk,
        "score": view.customer.health_score,
        "red": view.red,
        "red_threshold": view.red_threshold,
        "leads": [
            {
                "lead_id": lead.pk,
                "title": lead.title,
                "score": lead.health_score,
                "red": lead.health_score is not None and lead.health_score < view.red_threshold,
            }
            for lead in view.leads
        ],
    }


@router.get("/models", response=list[HealthModelOut], summary="Versions of the health score configuration")
def health_models(request: HttpRequest) -> list[dict[str, Any]]:
    _configurer(request)
    in_force = services.model_in_force()
    return [_model_out(model, in_force.pk if in_force else None) for model in selectors.health_models()]


@router.post("/models", response={201: HealthModelOut}, summary="A new version (draft, or published at once)")
def health_model_create(request: HttpRequest, payload: HealthModelIn) -> Status[dict[str, Any]]:
    user = _configurer(request)
    with transaction.atomic():  # published at once or not created at all
        model = services.health_model_create(
            actor=user,
            weights=payload.weights,
            windows=payload.windows,
            targets=payload.targets,
            half_life_days=payload.half_life_days,
            red_threshold=payload.red_threshold,
            note=payload.note,
        )
        if payload.publish:
            model = services.health_model_publish(
                actor=user, model=model, effective_at=_aware(payload.effective_at)
            )
    in_force = services.model_in_force()
    return Status(201, _model_out(model, in_force.pk if in_force else None))


@router.post("/models/{model_id}/publish", response=HealthModelOut, summary="Publish a draft version")
def health_model_publish(request: HttpRequest, model_id: RecordId, payload: PublishIn) -> dict[str, Any]:
    user = _configurer(request)
    model = get_object_or_404(HealthModel, pk=model_id)
    model = services.health_model_publish(actor=user, model=model, effective_at=_aware(payload.effective_at))
    in_force = services.model_in_force()
    return _model_out(model, in_force.pk if in_force else None)
