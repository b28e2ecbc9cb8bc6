"""A lead's assignments on its page (C8.2 "为什么分给我") and reassigning by hand."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from salesloop.accounts.models import User
from salesloop.core.roles import Role, sees_all
from salesloop.crm.models import Lead
from salesloop.crm.selectors import lead_get
from salesloop.routing import selectors, services
from salesloop.routing.forms import (
    ReassignForm,
)
from salesloop.routing.models import (
    Assignment,
)
from salesloop.routing.trace_text import reason_label, trace_sentences
from salesloop.routing.views.common import (
    CONDITION_FIELDS,
    METHODS,
    OUTCOMES,
    STRATEGY_LABELS,
    _render,
    _spread,
    _wants_fragment,
    _words,
    may_reassign,
    may_write,
)

# --- a lead's assignments ("为什么分给我") ----------------------------------------------------


@dataclass(frozen=True)
class ConditionRow:
    field: str
    expected: str
    actual: str
    ok: bool


@dataclass(frozen=True)
class CandidateRow:
    name: str
    kept: bool
    reason: str
    detail: str
    open_leads: int
    new_today: int
    winner: bool


@dataclass(frozen=True)
class RuleRow:
    id: str
    name: str
    priority: int | None
    strategy: str
    outcome: str
    outcome_label: str
    conditions: list[ConditionRow]
    candidates: list[CandidateRow]


@dataclass(frozen=True)
class AssignmentCard:
    assignment: Assignment
    sentences: list[str]
    method: str
    assignee: str
    actor: str
    ruleset_label: str
    ruleset_url: str
    rules: list[RuleRow]


@dataclass
class AssignmentPanel:
    lead: Lead
    heading: str
    mine: bool
    current: AssignmentCard | None
    earlier: list[AssignmentCard]
    form: ReassignForm | None
    problems: list[str] = field(default_factory=list)


def _condition_label(name: str) -> str:
    if name.startswith("fields."):
        return _("Custom field %(name)s") % {"name": name.removeprefix("fields.")}
    return str(CONDITION_FIELDS.get(name, name))


def _rule_rows(explanation: dict[str, Any], names: dict[int, str]) -> list[RuleRow]:
    rows = []
    for rule in explanation.get("rules", []):
        rows.append(
            RuleRow(
                id=rule.get("id", ""),
                name=rule.get("name", ""),
                priority=rule.get("priority"),
                strategy=str(STRATEGY_LABELS.get(rule.get("strategy", ""), rule.get("strategy", ""))),
                outcome=rule.get("outcome", ""),
                outcome_label=str(OUTCOMES.get(rule.get("outcome", ""), rule.get("outcome", ""))),
                conditions=[
                    ConditionRow(
                        field=_condition_label(check["field"]),
                        expected=_words(check["field"], check.get("expected")),
                        actual=_words(check["field"], check.get("actual")),
                        ok=bool(check.get("ok")),
                    )
                    for check in rule.get("conditions", [])
                ],
                candidates=[
                    CandidateRow(
                        name=names.get(c["user_id"], f"#{c['user_id']}"),
                        kept=bool(c.get("kept")),
                        reason=reason_label(c.get("reason", "")),
                        detail=c.get("detail", ""),
                        open_leads=int(c.get("open_leads", 0)),
                        new_today=int(c.get("new_today", 0)),
                        winner=bool(c.get("winner")),
                    )
                    for c in rule.get("candidates", [])
                ],
            )
        )
    return rows


def _assignment_card(assignment: Assignment, names: dict[int, str], user: Any) -> AssignmentCard:
    explanation = assignment.explanation or {}
    ruleset = explanation.get("ruleset") or {}
    label, url = "", ""
    if ruleset:
        label = _("v%(version)s “%(name)s”") % {
            "version": ruleset.get("version"),
            "name": ruleset.get("name", ""),
        }
        if ruleset.get("arm") == "candidate":
            label += " · " + _("A/B test: candidate rules")
        # An A/B candidate is a draft: only those who may read drafts get a link to it.
        if ruleset.get("id") and (ruleset.get("arm") != "candidate" or may_write(user)):
            url = reverse("routing-ruleset", args=[ruleset["id"]])
    return AssignmentCard(
        assignment=assignment,
        sentences=trace_sentences(explanation, names),
        method=str(METHODS.get(assignment.method, assignment.method)),
        assignee=names.get(assignment.assignee_id or 0, ""),
        actor=names.get(assignment.actor_id or 0, ""),
        ruleset_label=label,
        ruleset_url=url,
        rules=_rule_rows(explanation, names),
    )


def reassign_people(user: Any, lead: Lead) -> list[tuple[int, str]]:
    """Who the user may hand the lead to: active reps and managers — of their own region for a
    manager (services.lead_reassign refuses others). One query."""
    people = User.objects.filter(is_active=True, role__in=[Role.REP, Role.MANAGER])
    if not sees_all(user):
        people = people.filter(region_id=user.region_id)
    if lead.owner_id:
        people = people.exclude(pk=lead.owner_id)
    return [(person.pk, str(person)) for person in people.order_by("username")[:500]]


def lead_assignment_panel(
    user: Any, lead: Lead, *, form: ReassignForm | None = None, problems: list[str] | None = None
) -> AssignmentPanel:
    """The lead page's "为什么分给我" (its owner) / "分配记录" (everyone else): the current
    assignment in sentences with its detail, the earlier ones, and the reassign form for those
    who may use it. Two queries, three with the form, however long the history."""
    history, names = selectors.lead_assignments(lead=lead)
    cards = [_assignment_card(assignment, names, user) for assignment in history]
    mine = lead.owner_id == user.pk
    if form is None and may_reassign(user, lead):
        form = ReassignForm(people=reassign_people(user, lead))
    return AssignmentPanel(
        lead=lead,
        heading=_("Why this lead is mine") if mine else _("Assignment record"),
        mine=mine,
        current=cards[0] if cards else None,
        earlier=cards[1:],
        form=form,
        problems=problems or [],
    )


@login_required
@require_http_methods(["GET", "POST"])
def lead_assignment_page(request: HttpRequest, lead_id: int) -> HttpResponse:
    """GET: a lead's assignments on a page of their own (or the lead page's fragment, to htmx).
    POST: reassign by hand with a reason — the same service as POST /api/v1/leads/{id}/assignment."""
    lead = lead_get(user=request.user, lead_id=lead_id)  # Http404 out of scope
    if request.method == "GET":
        panel = lead_assignment_panel(request.user, lead)
        template = (
            "routing/_lead_assignment.html" if _wants_fragment(request) else "routing/lead_assignment.html"
        )
        return _render(request, template, {"panel": panel, "lead": lead})
    if not may_reassign(request.user, lead):
        raise PermissionDenied("only managers, directors and administrators reassign leads")
    form = ReassignForm(request.POST, people=reassign_people(request.user, lead))
    problems: list[str] = []
    if form.is_valid():
        owner_id = form.owner_id()
        owner = User.objects.filter(pk=owner_id).first() if owner_id else None
        try:
            services.lead_reassign(
                actor=request.user, lead=lead, owner=owner, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            problems = _spread(form, exc, aliases={"owner_id": "owner"})
        else:
            messages.success(
                request,
                _("Reassigned to %(owner)s.") % {"owner": owner}
                if owner
                else _("Returned to the region's pool."),
            )
            url = reverse("lead-detail", args=[lead.pk])
            return HttpResponseClientRedirect(url) if _wants_fragment(request) else redirect(url)
    panel = lead_assignment_panel(request.user, lead, form=form, problems=problems)
    template = "routing/_lead_assignment.html" if _wants_fragment(request) else "routing/lead_assignment.html"
    return _render(request, template, {"panel": panel, "lead": lead}, status=422)
