"""REST endpoints of routing (C8): rule-set versions, the policy, and a lead's assignment trace.

The sandbox (simulate, A/B, reports) is in sandbox_api.py; rep profiles and specialty tags in
reps_api.py. Every endpoint calls the same services and selectors as the pages."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from salesloop.accounts.models import User
from salesloop.core.roles import Role, is_admin
from salesloop.core.schemas import RecordId, Text
from salesloop.crm.selectors import lead_get
from salesloop.routing import selectors, services
from salesloop.routing.models import Assignment, RuleSet
from salesloop.routing.ruleset import json_schema

router = Router()
lead_router = Router()


class RuleSetOut(Schema):
    id: int
    version: int
    name: str
    status: str
    in_force: bool
    definition: dict[str, Any]
    based_on_id: int | None
    created_by_id: int | None
    created_at: dt.datetime
    effective_at: dt.datetime | None
    published_at: dt.datetime | None
    published_by_id: int | None
    publish_note: str
    override_reason: str
    report_id: int | None
    rolled_back_at: dt.datetime | None
    rollback_reason: str


class RuleSetIn(Schema):
    definition: dict[str, Any] = Field(description="the rule-set document; see GET /routing/rulesets/schema")
    based_on_id: RecordId | None = None


class RuleSetPatch(Schema):
    definition: dict[str, Any]


class PublishIn(Schema):
    effective_at: dt.datetime | None = Field(
        default=None,
        description="when it takes effect; at least the notice period ahead (default: exactly that)",
    )
    note: Text(2000) = ""  # type: ignore[valid-type]
    override_reason: Text(2000) = Field(  # type: ignore[valid-type]
        default="", description="required when the simulation found region matching worse than the margin"
    )


class ReasonIn(Schema):
    reason: Text(2000)  # type: ignore[valid-type]


class PolicyOut(Schema):
    notice_hours: int
    committee: list[int]
    region_match_margin: float
    province_share_limit: float
    replay_days: int
    ab_share: float


class PolicyPatch(Schema):
    notice_hours: int | None = Field(default=None, ge=0, le=24 * 90)
    committee: list[RecordId] | None = None
    region_match_margin: float | None = Field(default=None, ge=0, le=1)
    province_share_limit: float | None = Field(default=None, ge=0, le=1)
    replay_days: int | None = Field(default=None, ge=1, le=3650)
    ab_share: float | None = Field(default=None, gt=0, lt=1)


class RuleSetListQuery(Schema):
    status: Text(20) | None = None  # type: ignore[valid-type]


def _out(ruleset: RuleSet, in_force_id: int | None) -> dict[str, Any]:
    return {
        "id": ruleset.pk,
        "version": ruleset.version,
        "name": ruleset.name,
        "status": ruleset.status,
        "in_force": ruleset.pk == in_force_id,
        "definition": ruleset.definition,
        "based_on_id": ruleset.based_on_id,
        "created_by_id": ruleset.created_by_id,
        "created_at": ruleset.created_at,
        "effective_at": ruleset.effective_at,
        "published_at": ruleset.published_at,
        "published_by_id": ruleset.published_by_id,
        "publish_note": ruleset.publish_note,
        "override_reason": ruleset.override_reason,
        "report_id": ruleset.report_id,
        "rolled_back_at": ruleset.rolled_back_at,
        "rollback_reason": ruleset.rollback_reason,
    }


def _in_force_id() -> int | None:
    current = services.ruleset_in_force()
    return current.pk if current else None


@router.get("/rulesets/schema", response=dict[str, Any], summary="JSON schema of a rule-set document")
def ruleset_schema(request: HttpRequest) -> dict[str, Any]:
    return json_schema()


@router.get("/rulesets", response=list[RuleSetOut], summary="Rule-set versions, newest first")
def ruleset_list(request: HttpRequest, query: Query[RuleSetListQuery]) -> list[dict[str, Any]]:
    user = request.auth  # type: ignore[attr-defined]
    rulesets = selectors.rulesets_visible_to(user=user, status=query.status)
    in_force = _in_force_id()
    return [_out(r, in_force) for r in rulesets]


@router.post("/rulesets", response={201: RuleSetOut}, summary="Draft a new rule-set version")
def ruleset_create(request: HttpRequest, payload: RuleSetIn) -> Status:
    user = request.auth  # type: ignore[attr-defined]
    based_on = (
        selectors.ruleset_get(user=user, ruleset_id=payload.based_on_id) if payload.based_on_id else None
    )
    ruleset = services.ruleset_create(actor=user, definition=payload.definition, based_on=based_on)
    return Status(201, _out(ruleset, _in_force_id()))


@router.get("/rulesets/{ruleset_id}", response=RuleSetOut, summary="One rule-set version")
def ruleset_detail(request: HttpRequest, ruleset_id: RecordId) -> dict[str, Any]:
    user = request.auth  # type: ignore[attr-defined]
    return _out(selectors.ruleset_get(user=user, ruleset_id=ruleset_id), _in_force_id())


@router.patch("/rulesets/{ruleset_id}", response=RuleSetOut, summary="Edit a draft")
def ruleset_update(request: HttpRequest, ruleset_id: RecordId, payload: RuleSetPatch) -> dict[str, Any]:
    user = request.auth  # type: ignore[attr-defined]
    ruleset = selectors.ruleset_get(user=user, ruleset_id=ruleset_id)
    ruleset = services.ruleset_update(actor=user, ruleset=ruleset, definition=payload.definition)
    return _out(ruleset, _in_force_id())


@router.post(
    "/rulesets/{ruleset_id}/publish",
    response=RuleSetOut,
    summary="Publish a simulated draft with notice; the sales committee is told with the report",
)
def ruleset_publish(request: HttpRequest, ruleset_id: RecordId, payload: PublishIn) -> dict[str, Any]:
    user = request.auth  # type: ignore[attr-defined]
    ruleset = selectors.ruleset_get(user=user, ruleset_id=ruleset_id)
    ruleset = services.ruleset_publish(
        actor=user,
        ruleset=ruleset,
        effective_at=payload.effective_at,
        note=payload.note,
        override_reason=payload.override_reason,
    )
    return _out(ruleset, _in_force_id())


@router.post(
    "/rulesets/{ruleset_id}/cancel", response=RuleSetOut, summary="Withdraw a version before it takes effect"
)
def ruleset_cancel(request: HttpRequest, ruleset_id: RecordId, payload: ReasonIn) -> dict[str, Any]:
    user = request.auth  # type: ignore[attr-defined]
    ruleset = selectors.ruleset_get(user=user, ruleset_id=ruleset_id)
    return _out(services.ruleset_cancel(actor=user, ruleset=ruleset, reason=payload.reason), _in_force_id())


@router.post("/rollback", response=RuleSetOut, summary="Roll back the version in force at once (admins)")
def ruleset_rollback(request: HttpRequest, payload: ReasonIn) -> dict[str, Any]:
    user = request.auth  # type: ignore[attr-defined]
    return _out(services.ruleset_rollback(actor=user, reason=payload.reason), _in_force_id())


def _policy_out(policy: Any) -> dict[str, Any]:
    return {
        "notice_hours": policy.notice_hours,
        "committee": sorted(policy.committee.values_list("pk", flat=True)),
        "region_match_margin": float(policy.region_match_margin),
        "province_share_limit": float(policy.province_share_limit),
        "replay_days": policy.replay_days,
        "ab_share": float(policy.ab_share),
    }


@router.get("/policy", response=PolicyOut, summary="Notice period, sales committee and sandbox limits")
def policy_detail(request: HttpRequest) -> dict[str, Any]:
    user = request.auth  # type: ignore[attr-defined]
    if user.role == Role.REP and not user.is_superuser:
        raise PermissionDenied("the routing policy is for managers and above")
    return _policy_out(services.policy_get())


@router.patch("/policy", response=PolicyOut, summary="Change the routing policy (admins)")
def policy_update(request: HttpRequest, payload: PolicyPatch) -> dict[str, Any]:
    user = request.auth  # type: ignore[attr-defined]
    if not is_admin(user):
        raise PermissionDenied("only administrators change the routing policy")
    changes = payload.dict(exclude_unset=True)
    committee_ids = changes.pop("committee", None)
    committee = None
    if committee_ids is not None:
        committee = list(User.objects.filter(pk__in=committee_ids, is_active=True))
        missing = sorted(set(committee_ids) - {u.pk for u in committee})
        if missing:
            from django.core.exceptions import ValidationError

            raise ValidationError({"committee": f"no active user #{missing[0]}"})
    for key in ("region_match_margin", "province_share_limit", "ab_share"):
        if changes.get(key) is not None:
            changes[key] = str(changes[key])
    changes = {k: v for k, v in changes.items() if v is not None}
    return _policy_out(services.policy_update(actor=user, committee=committee, **changes))


# ---- a lead's assignment ----------------------------------------------------------------------


class AssignmentOut(Schema):
    id: int
    lead_id: int
    assignee: dict[str, Any] | None
    previous_owner_id: int | None
    method: str
    ruleset_id: int | None
    ruleset_version: int | None
    rule_id: str
    strategy: str
    arm: str
    actor: dict[str, Any] | None
    reason: str
    created_at: dt.datetime
    explanation: dict[str, Any]
    summary: list[str] = Field(description="the trace in plain sentences, in the reader's language")


class LeadAssignmentOut(Schema):
    current: AssignmentOut | None
    history: list[AssignmentOut]


class ReassignIn(Schema):
    owner_id: RecordId | None = Field(description="the new owner; null returns the lead to its region's pool")
    reason: Text(2000)  # type: ignore[valid-type]


def assignment_out(assignment: Assignment, names: dict[int, str]) -> dict[str, Any]:
    from salesloop.routing.trace_text import trace_sentences

    assignee = assignment.assignee_id
    return {
        "id": assignment.pk,
        "lead_id": assignment.lead_id,
        "assignee": {"id": assignee, "name": names.get(assignee, "")} if assignee else None,
        "previous_owner_id": assignment.previous_owner_id,
        "method": assignment.method,
        "ruleset_id": assignment.ruleset_id,
        "ruleset_version": (assignment.explanation.get("ruleset") or {}).get("version"),
        "rule_id": assignment.rule_id,
        "strategy": assignment.strategy,
        "arm": assignment.arm,
        "actor": {"id": assignment.actor_id, "name": names.get(assignment.actor_id, "")}
        if assignment.actor_id
        else None,
        "reason": assignment.reason,
        "created_at": assignment.created_at,
        "explanation": selectors.explanation_with_names(assignment.explanation, names),
        "summary": trace_sentences(assignment.explanation, names),
    }


@lead_router.get(
    "/{lead_id}/assignment",
    response=LeadAssignmentOut,
    summary="Why the lead went to its owner: the latest assignment's trace, and every earlier one",
)
def lead_assignment(request: HttpRequest, lead_id: RecordId) -> dict[str, Any]:
    user = request.auth  # type: ignore[attr-defined]
    lead = lead_get(user=user, lead_id=lead_id)
    history, names = selectors.lead_assignments(lead=lead)
    rows = [assignment_out(a, names) for a in history]
    return {"current": rows[0] if rows else None, "history": rows}


@lead_router.post(
    "/{lead_id}/assignment",
    response={201: AssignmentOut},
    summary="Reassign by hand (managers in their region, directors, admins), with a reason",
)
def lead_reassign(request: HttpRequest, lead_id: RecordId, payload: ReassignIn) -> Status:
    user = request.auth  # type: ignore[attr-defined]
    lead = lead_get(user=user, lead_id=lead_id)
    owner = None
    if payload.owner_id is not None:
        owner = User.objects.filter(pk=payload.owner_id).first()
        if owner is None:
            from django.core.exceptions import ValidationError

            raise ValidationError({"owner_id": f"no user #{payload.owner_id}"})
    assignment = services.lead_reassign(actor=user, lead=lead, owner=owner, reason=payload.reason)
    _, names = selectors.lead_assignments(lead=lead)
    return Status(201, assignment_out(selectors.assignments_unpack([assignment])[0], names))
