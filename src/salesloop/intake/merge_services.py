"""Merge suggestions judged by a person (SPEC C1.4): "not the same person", and the reads the merge
pages need around `services.lead_merge` / `services.lead_unmerge`.

The write (`merge_suggestion_dismiss`) lives here rather than in `services.py` only because that
module is owned elsewhere; it follows the same rules: keyword-only, atomic, permission-checked,
audited. The two reads are scoped through `crm.selectors.leads_visible_to` like every selector, and
can move to `selectors.py` unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import Http404

from salesloop.core.audit import audit_record
from salesloop.core.models import AuditEntry
from salesloop.core.roles import Role
from salesloop.crm.models import Lead
from salesloop.crm.selectors import leads_visible_to
from salesloop.intake.models import MergeSuggestion

MERGE_ROLES = frozenset({Role.MANAGER, Role.DIRECTOR, Role.ADMIN})
MERGE_ACTIONS = ("lead.merge", "lead.unmerge")
HISTORY_LIMIT = 20


def merge_allowed(user: Any) -> bool:
    """Who judges identity: the same people `services.lead_merge` lets merge. A rep would be
    judging their own leads' fate; a product manager reviews but does not change records."""
    return bool(user.is_superuser) or user.role in MERGE_ROLES


@transaction.atomic
def merge_suggestion_dismiss(*, actor: Any, suggestion: MergeSuggestion, reason: str = "") -> MergeSuggestion:
    """C1.4: a person decided the two leads are different people. The suggestion is kept (dismissed,
    not deleted) so the same pair is never suggested again — `get_or_create` finds it — and the
    decision is in the audit log with who made it."""
    if not merge_allowed(actor):
        raise PermissionDenied("managers, directors and administrators judge merge suggestions")
    suggestion = MergeSuggestion.objects.select_for_update().get(pk=suggestion.pk)
    if suggestion.status != MergeSuggestion.Status.OPEN:
        raise ValidationError({"status": f"this suggestion is already {suggestion.status}"})
    suggestion.status = MergeSuggestion.Status.DISMISSED
    suggestion.save(update_fields=["status"])
    audit_record(
        actor=actor,
        action="merge_suggestion.dismiss",
        target=suggestion,
        before={"status": MergeSuggestion.Status.OPEN, "lead": suggestion.lead_id},
        after={"status": MergeSuggestion.Status.DISMISSED, "candidate": suggestion.candidate_id},
        reason=reason[:200],
    )
    return suggestion


# ---- reads ----------------------------------------------------------------------------------


def merge_suggestion_get(*, user: Any, suggestion_id: int) -> MergeSuggestion:
    """An open suggestion whose two leads the user both sees; 404 otherwise (never a leak, and a
    suggestion already judged is not judged twice)."""
    visible = leads_visible_to(user)
    suggestion = (
        MergeSuggestion.objects.filter(
            pk=suggestion_id,
            status=MergeSuggestion.Status.OPEN,
            lead__in=visible,
            candidate__in=visible,
        )
        .select_related("lead", "candidate")
        .first()
    )
    if suggestion is None:
        raise Http404("merge suggestion not found")
    return suggestion


@dataclass(frozen=True)
class MergeState:
    """Where a lead stands in merges: folded into another, or holding others, and what happened."""

    merged_into: Lead | None  # None when not merged, or when the survivor is out of the user's scope
    merged_leads: list[Lead]
    history: list[AuditEntry]


def lead_merge_state(*, user: Any, lead: Lead) -> MergeState:
    """Three queries whatever the number of merged leads. History covers the lead as the merged
    one (target) and as the survivor (named in before/after), newest first."""
    visible = leads_visible_to(user)
    merged_into = (
        visible.select_related("customer", "owner").filter(pk=lead.merged_into_id).first()
        if lead.merged_into_id
        else None
    )
    merged_leads = list(
        visible.filter(merged_into_id=lead.pk).select_related("customer", "contact", "owner").order_by("id")
    )
    history = list(
        AuditEntry.objects.filter(target_type=Lead._meta.label_lower, action__in=MERGE_ACTIONS)
        .filter(Q(target_id=str(lead.pk)) | Q(after__merged_into=lead.pk) | Q(before__merged_into=lead.pk))
        .select_related("actor")
        .order_by("-at", "-id")[:HISTORY_LIMIT]
    )
    return MergeState(merged_into=merged_into, merged_leads=merged_leads, history=history)
