"""Routing reads: rule-set versions and a lead's assignments (scoped by the caller through
crm.selectors.lead_get before they get here)."""

from __future__ import annotations

import copy
from typing import Any

from django.http import Http404

from salesloop.accounts.models import User
from salesloop.crm.models import Lead
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


def lead_assignments(*, lead: Lead) -> tuple[list[Assignment], dict[int, str]]:
    """The lead's assignments, newest first, and the names of everyone they mention (two queries)."""
    history = list(Assignment.objects.filter(lead_id=lead.pk).order_by("-id")[:50])
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
