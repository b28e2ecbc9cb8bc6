"""Reads of check-ins (SPEC C4.1, C4.3), scoped by role (DESIGN.md rule 4): a rep sees their own
check-ins and evidence; a manager those of the reps of their region; directors, product managers and
admins all. Out of scope is a 404, exactly like a record that does not exist."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404

from salesloop.accounts.models import Team, User
from salesloop.core.roles import Role, sees_all
from salesloop.crm.selectors import Page, keyset_page
from salesloop.engagement.checkin_models import (
    Checkin,
    CheckinActionType,
    CheckinEvidence,
    CheckinResult,
    EvidenceUpload,
)


def checkins_visible_to(user: Any) -> QuerySet[Checkin]:
    checkins = Checkin.objects.all()
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return checkins.none()
    if sees_all(user):
        return checkins
    if user.role == Role.MANAGER and user.region_id:
        return checkins.filter(Q(actor__region_id=user.region_id) | Q(actor_id=user.pk))
    return checkins.filter(actor_id=user.pk)


def reps_visible_to(user: Any) -> QuerySet[User]:
    """Whose check-ins the user may look at: themselves; a manager their region's active reps;
    directors and admins every active rep."""
    users = User.objects.filter(is_active=True)
    if not getattr(user, "is_authenticated", False):
        return users.none()
    if sees_all(user):
        return users.filter(role=Role.REP)
    if user.role == Role.MANAGER and user.region_id:
        return users.filter(role=Role.REP, region_id=user.region_id)
    return users.filter(pk=user.pk)


def teams_visible_to(user: Any) -> QuerySet[Team]:
    if sees_all(user):
        return Team.objects.all()
    if user.role == Role.MANAGER and user.region_id:
        return Team.objects.filter(region_id=user.region_id)
    return Team.objects.none()


def _with_details(checkins: QuerySet[Checkin]) -> QuerySet[Checkin]:
    # the lead's owner: whether the viewer may see phone numbers OCR read on the evidence
    return checkins.select_related(
        "action_type", "actor", "lead", "lead__owner", "stage", "stage_move", "stage_move__to_stage"
    ).prefetch_related(
        Prefetch(
            "evidence",
            queryset=CheckinEvidence.objects.select_related("attachment", "attachment__ocr").order_by("id"),
        )
    )


def checkin_get(*, user: Any, checkin_id: int) -> Checkin:
    checkin = _with_details(checkins_visible_to(user)).filter(pk=checkin_id).first()
    if checkin is None:
        raise Http404("check-in not found")
    return checkin


def rep_get(*, user: Any, rep_id: int) -> User:
    """A user whose check-ins `user` may see (404 otherwise), themselves included."""
    if rep_id == user.pk:
        return user
    rep = reps_visible_to(user).filter(pk=rep_id).first()
    if rep is None:
        raise Http404("rep not found")
    return rep


def checkins_of_day(*, user: Any, rep: User, day: dt.date) -> list[Checkin]:
    """A rep's daily report (C4.1): their check-ins of that day, in time order, with evidence — two
    queries. `rep` was fetched with `rep_get` (scoped)."""
    return list(
        _with_details(checkins_visible_to(user).filter(actor_id=rep.pk, day=day)).order_by("at", "id")
    )


def checkin_list(
    *,
    user: Any,
    day: dt.date | None = None,
    rep_id: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """Newest first by keyset, optionally one day's and one rep's (API)."""
    checkins = checkins_visible_to(user)
    if day is not None:
        checkins = checkins.filter(day=day)
    if rep_id is not None:
        checkins = checkins.filter(actor_id=rep_id)
    return keyset_page(_with_details(checkins), cursor=cursor, limit=limit)


def evidence_get(*, user: Any, evidence_id: int) -> CheckinEvidence:
    """One evidence file, through its check-in's scope: another rep's evidence is a 404."""
    evidence = (
        CheckinEvidence.objects.select_related("attachment", "checkin")
        .filter(pk=evidence_id, checkin__in=checkins_visible_to(user))
        .first()
    )
    if evidence is None:
        raise Http404("evidence not found")
    return evidence


def upload_get(*, user: Any, upload_id: uuid.UUID) -> EvidenceUpload:
    """An upload slot is its owner's alone until a check-in claims it."""
    upload = EvidenceUpload.objects.filter(pk=upload_id, owner_id=user.pk).first()
    if upload is None:
        raise Http404("upload not found")
    return upload


def action_types(*, include_retired: bool = False) -> list[CheckinActionType]:
    types = CheckinActionType.objects.order_by("position", "id")
    return list(types if include_retired else types.filter(active=True))


# ---- the manager's day (C4.3) ---------------------------------------------------------------------


@dataclass
class RepDay:
    rep: User
    checkins: list[Checkin] = field(default_factory=list)
    by_action: Counter[str] = field(default_factory=Counter)
    by_result: Counter[str] = field(default_factory=Counter)
    moved: list[Checkin] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.checkins)


@dataclass
class TeamDay:
    day: dt.date
    team: Team | None
    reps: list[RepDay]
    action_types: list[CheckinActionType]
    by_action: Counter[str]
    by_result: Counter[str]
    moved: list[Checkin]

    @property
    def checked_in(self) -> list[RepDay]:
        return [row for row in self.reps if row.checkins]

    @property
    def without(self) -> list[RepDay]:
        return [row for row in self.reps if not row.checkins]

    @property
    def total(self) -> int:
        return sum(row.count for row in self.reps)

    def action_counts(self) -> list[tuple[CheckinActionType, int]]:
        return [(kind, self.by_action[kind.code]) for kind in self.action_types if self.by_action[kind.code]]

    def result_counts(self) -> list[tuple[str, str, int]]:
        return [(value, str(label), self.by_result[value]) for value, label in CheckinResult.choices]


def team_day(*, user: Any, day: dt.date, team_id: int | None = None) -> TeamDay:
    """Who checked in on `day`, actions by type, results by type, the leads that moved through a
    check-in, and the reps with none — for the reps in the user's scope (and the team, if given).
    Four queries whatever the size of the team: team, reps, check-ins, action types."""
    team = None
    if team_id is not None:
        team = teams_visible_to(user).filter(pk=team_id).first()
        if team is None:
            raise Http404("team not found")
    reps = reps_visible_to(user).select_related("team").order_by("team__name", "username")
    if team is not None:
        reps = reps.filter(team_id=team.pk)
    rep_list = list(reps)
    rows = {rep.pk: RepDay(rep=rep) for rep in rep_list}
    checkins = list(
        checkins_visible_to(user)
        .filter(day=day, actor_id__in=list(rows), withdrawn_at__isnull=True)
        .select_related("action_type", "lead", "stage", "stage_move", "stage_move__to_stage")
        .order_by("at", "id")
    )
    by_action: Counter[str] = Counter()
    by_result: Counter[str] = Counter()
    moved: list[Checkin] = []
    for checkin in checkins:
        row = rows[checkin.actor_id]
        checkin.actor = row.rep  # already fetched: no query per row
        row.checkins.append(checkin)
        row.by_action[checkin.action_type.code] += 1
        row.by_result[checkin.result_type] += 1
        by_action[checkin.action_type.code] += 1
        by_result[checkin.result_type] += 1
        if checkin.stage_move_id is not None:
            row.moved.append(checkin)
            moved.append(checkin)
    return TeamDay(
        day=day,
        team=team,
        reps=list(rows.values()),
        action_types=action_types(include_retired=True),
        by_action=by_action,
        by_result=by_result,
        moved=moved,
    )
