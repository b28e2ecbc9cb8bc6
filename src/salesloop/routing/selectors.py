"""Routing reads: rule-set versions and a lead's assignments (scoped by the caller through
crm.selectors.lead_get before they get here)."""

from __future__ import annotations

import copy
from typing import Any

from django.http import Http404

from salesloop.accounts.models import User
from salesloop.crm.models import Lead
from salesloop.routing import traces
from salesloop.routing.models import Assignment, RuleSet, RuleSetStatus


def rulesets_visible_to(*, user: Any, status: str | None = None) -> list[RuleSet]:
    """Rule sets are the organisation's published rules of the game: everyone signed in may read
    them (C8: "rules you can read"); drafts only those who write rules."""
    rulesets = RuleSet.objects.order_by("-version")
    if not (user.is_superuser or user.role in {"admin", "director"}):
        rulesets = rulesets.exclude(status=RuleSetStatus.DRAFT)
    if status:
        rulesets = rulesets.filter(status=status)
    return list(rulesets[:200])


def ruleset_get(*, user: Any, ruleset_id: int) -> RuleSet:
    ruleset = RuleSet.objects.filter(pk=ruleset_id).first()
    if ruleset is None:
        raise Http404("no such rule set")
    if ruleset.status == RuleSetStatus.DRAFT and not (
        user.is_superuser or user.role in {"admin", "director"}
    ):
        raise Http404("no such rule set")
    return ruleset


def assignments_unpack(assignments: list[Assignment]) -> list[Assignment]:
    """Each assignment with its explanation in the public form (routing.traces: rule traces are
    stored packed), in memory. Their rule-set versions should be loaded with them
    (`select_related("ruleset")`), or each is read once here."""
    from salesloop.routing.services import definition_of

    for assignment in assignments:
        stored = assignment.explanation
        if stored and stored.get("packed"):
            definition = definition_of(assignment.ruleset) if assignment.ruleset_id else None
            assignment.explanation = traces.unpack(stored, definition)
    return assignments


def assignment_explanation(assignment: Assignment) -> dict[str, Any]:
    """One assignment's explanation in the public form."""
    return assignments_unpack([assignment])[0].explanation


def lead_assignments(*, lead: Lead) -> tuple[list[Assignment], dict[int, str]]:
    """The lead's assignments, newest first, with their explanations in the public form, and the
    names of everyone they mention (two queries)."""
    history = assignments_unpack(
        list(Assignment.objects.filter(lead_id=lead.pk).select_related("ruleset").order_by("-id")[:50])
    )
    ids: set[int] = set()
    for assignment in history:
        ids.update(filter(None, (assignment.assignee_id, assignment.actor_id, assignment.previous_owner_id)))
        for rule in assignment.explanation.get("rules", []):
            ids.update(c["user_id"] for c in rule.get("candidates", []))
    names = {u.pk: str(u) for u in User.objects.filter(pk__in=ids)} if ids else {}
    return history, names


def explanation_with_names(explanation: dict[str, Any], names: dict[int, str]) -> dict[str, Any]:
    """The stored trace with each candidate's current display name added (the trace keeps ids)."""
    shown = copy.deepcopy(explanation)
    for rule in shown.get("rules", []):
        for candidate in rule.get("candidates", []):
            candidate["name"] = names.get(candidate["user_id"], f"#{candidate['user_id']}")
    return shown
