"""Rep routing profiles, leave and specialty tags (SPEC C8.5; issue 4 item 6).

What routing knows of a rep beyond their account — specialty tags, capacity caps, working hours —
and their leave, with the services that change them (audited: who, when, before, after) and the
specialty review a manager works from: each rep's tags, the tags their won deals suggest, and the
tags their record contradicts, with the numbers behind every line.

Who may do what (DESIGN.md rule 4):

- seeing: a rep sees their own profile; a manager their region's reps (and their own profile);
  directors, product managers and admins everyone routing can pick (reps and managers);
- tags, caps and working hours are set by the rep's manager (a manager for the reps of their own
  region; directors and admins for anyone routable). They decide how many and which leads a rep
  gets, so a rep does not set their own: a rep who could drop their caps or tag away an industry
  would route work to colleagues;
- leave is recorded by the rep themselves or by whoever manages them: the rep knows first. It is
  audited, shown to the manager, and deleting a leave that is over is refused (it is history that
  earlier traces refer to).

The specialty rule (C8.5), over the rep's *record*: their open leads and the leads closed in the
last `WINDOW_DAYS` days, merged duplicates left out, grouped by the customer's industry. The
*team* is the reps of the rep's region (the peers routing chooses between); its numbers include
the rep.

- **suggested**: an industry the rep is not tagged with where the rep won at least
  `SUGGEST_MIN_WINS` deals, the industry's share of the rep's wins is at least `SUGGEST_MIN_LIFT`
  times its share of the team's wins (the *lift*), and the rep's win rate in it is not below the
  team's — a share inflated by sheer volume of leads, at a worse rate, is no specialty;
- **flagged**: no tags at all (an industry-match rule never picks the rep); a tag for an industry
  where the rep has no lead at all in the window; a tag for an industry where the rep closed at
  least `CONTRADICT_MIN_CLOSED` leads and won at less than `CONTRADICT_RATE_RATIO` of the team's
  win rate for it.

Every suggestion and flag carries its `IndustryRecord` (wins, closed, rates, shares, lift), and
`suggestion_sentence` / `flag_sentence` say it in plain words in the reader's language.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from salesloop.accounts.models import User
from salesloop.core import clock
from salesloop.core.audit import audit_record
from salesloop.core.roles import Role, is_admin, sees_all
from salesloop.crm.models import Customer, Lead, LeadStatus
from salesloop.routing.models import Leave, RepProfile

WINDOW_DAYS = 365
SUGGEST_MIN_WINS = 5
SUGGEST_MIN_LIFT = 1.5
CONTRADICT_MIN_CLOSED = 10
CONTRADICT_RATE_RATIO = 0.6
MAX_TAGS = 20
TAG_MAX_LENGTH = 40  # crm.Customer.industry's length: a longer tag can never match a lead
MAX_CAP = 100_000
MAX_LEAVE_DAYS = 366
MAX_AHEAD_YEARS = 2
REASON_MAX_LENGTH = 200

ROUTABLE_ROLES = (Role.REP, Role.MANAGER)

FLAG_BLANK = "blank"
FLAG_NO_RECORD = "no_record"
FLAG_UNDERPERFORMS = "underperforms"


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # "leave this field as it is" in rep_profile_update


# ---- who may see and do what ----------------------------------------------------------------


def reps_visible_to(actor: Any) -> QuerySet[User]:
    """The routable people whose profile the actor may see (scoping for every read here)."""
    users = User.objects.filter(role__in=ROUTABLE_ROLES)
    if not getattr(actor, "is_authenticated", False) or not actor.is_active:
        return users.none()
    if sees_all(actor):
        return users
    if actor.role == Role.MANAGER and actor.region_id:
        return users.filter(Q(role=Role.REP, region_id=actor.region_id) | Q(pk=actor.pk))
    if actor.role in ROUTABLE_ROLES:
        return users.filter(pk=actor.pk)
    return users.none()


def may_manage(actor: Any, user: Any) -> bool:
    """May the actor set the user's tags, caps and working hours (and their leave)?"""
    if user.role not in ROUTABLE_ROLES:
        return False
    if is_admin(actor) or actor.role == Role.DIRECTOR:
        return True
    return (
        actor.role == Role.MANAGER
        and actor.region_id is not None
        and user.role == Role.REP
        and user.region_id == actor.region_id
    )


def may_record_leave(actor: Any, user: Any) -> bool:
    return user.role in ROUTABLE_ROLES and (actor.pk == user.pk or may_manage(actor, user))


def rep_get(*, actor: Any, user_id: int) -> User:
    """The routable user, if the actor may see them; otherwise 404 (as if they did not exist)."""
    user = reps_visible_to(actor).select_related("region", "rep_profile").filter(pk=user_id).first()
    if user is None:
        raise Http404("no such rep")
    return user


def rep_leaves(*, user: Any) -> list[LeaveRow]:
    """The user's current and coming leaves (one query); the review has them for the reps it lists."""
    now = clock.now()
    leaves = Leave.objects.filter(user_id=user.pk, ends_at__gt=now).order_by("starts_at")
    return [_leave_row(leave, now) for leave in leaves]


def leave_get(*, user: User, leave_id: int) -> Leave:
    leave = Leave.objects.filter(pk=leave_id, user_id=user.pk).first()
    if leave is None:
        raise Http404("no such leave")
    return leave


# ---- profile ----------------------------------------------------------------------------------


def _profile_state(profile: RepProfile) -> dict[str, Any]:
    """The profile as JSON for the audit log (times as HH:MM)."""
    return {
        "specialties": list(profile.specialties),
        "max_open_leads": profile.max_open_leads,
        "max_new_per_day": profile.max_new_per_day,
        "work_days": list(profile.work_days),
        "work_start": profile.work_start.strftime("%H:%M") if profile.work_start else None,
        "work_end": profile.work_end.strftime("%H:%M") if profile.work_end else None,
    }


def _unprintable(text: str) -> bool:
    return any(unicodedata.category(ch) in {"Cc", "Cs", "Cf"} for ch in text)


def _clean_specialties(value: Any, current: list[str], errors: dict[str, str]) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        errors["specialties"] = _('a list of industries, e.g. ["医疗器械"]')
        return current
    tags: list[str] = []
    for raw in value:
        tag = raw.strip()
        if not tag or tag in tags:
            continue  # a trailing comma or a repeated tag is not an error worth a refusal
        if len(tag) > TAG_MAX_LENGTH:
            errors["specialties"] = _("「%(tag)s」 is longer than %(max)s characters") % {
                "tag": tag[:TAG_MAX_LENGTH] + "…",
                "max": TAG_MAX_LENGTH,
            }
            return current
        if _unprintable(tag):
            errors["specialties"] = _("a tag contains control characters")
            return current
        tags.append(tag)
    if len(tags) > MAX_TAGS:
        errors["specialties"] = _("at most %(max)s tags") % {"max": MAX_TAGS}
        return current
    # Tags match leads by the customer's industry written exactly: a tag no customer has is a typo
    # (制造 for 制造业) that would silently never match. Tags already held are not re-checked.
    new = [tag for tag in tags if tag not in current]
    if new:
        known = set(Customer.objects.filter(industry__in=new).values_list("industry", flat=True).distinct())
        unknown = [tag for tag in new if tag not in known]
        if unknown:
            examples = list(
                Customer.objects.exclude(industry="")
                .order_by("industry")
                .values_list("industry", flat=True)
                .distinct()[:8]
            )
            errors["specialties"] = _(
                "no customer has the industry %(unknown)s; write tags as customers' industries are "
                "written (%(examples)s)"
            ) % {
                "unknown": "、".join(f"「{tag}」" for tag in unknown),
                "examples": "、".join(examples) or "—",
            }
            return current
    return tags


def _clean_cap(name: str, value: Any, errors: dict[str, str]) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CAP:
        errors[name] = _("a whole number from 1 to %(max)s, or empty for no cap") % {"max": f"{MAX_CAP:,}"}
        return None
    return value


def _clean_work_days(value: Any, errors: dict[str, str]) -> list[int]:
    if not isinstance(value, list | tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) for d in value
    ):
        errors["work_days"] = _("a list of weekdays, 1 (Monday) to 7 (Sunday)")
        return []
    if any(not 1 <= d <= 7 for d in value):
        errors["work_days"] = _("weekdays are 1 (Monday) to 7 (Sunday)")
        return []
    return sorted(set(value))


def _clean_time(name: str, value: Any, errors: dict[str, str]) -> dt.time | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = dt.time.fromisoformat(value)
        except ValueError:
            errors[name] = _("a time of day, HH:MM")
            return None
    if not isinstance(value, dt.time) or value.tzinfo is not None:
        errors[name] = _("a time of day, HH:MM")
        return None
    return value.replace(second=0, microsecond=0)


@transaction.atomic
def rep_profile_update(
    *,
    actor: Any,
    user: User,
    specialties: Any = UNSET,
    max_open_leads: Any = UNSET,
    max_new_per_day: Any = UNSET,
    work_days: Any = UNSET,
    work_start: Any = UNSET,
    work_end: Any = UNSET,
) -> RepProfile:
    """C8.5: set a rep's specialty tags, capacity caps and working hours (the fields given; the
    others stay). Set by the rep's manager (directors and admins: anyone routable); audited with
    the state before and after. A refusal names every bad field at once."""
    if not may_manage(actor, user):
        raise PermissionDenied("a manager sets the profiles of their own region's reps")
    RepProfile.objects.get_or_create(user=user)
    profile = RepProfile.objects.select_for_update().get(user=user)
    before = _profile_state(profile)
    errors: dict[str, str] = {}
    if specialties is not UNSET:
        profile.specialties = _clean_specialties(specialties, list(profile.specialties), errors)
    if max_open_leads is not UNSET:
        profile.max_open_leads = _clean_cap("max_open_leads", max_open_leads, errors)
    if max_new_per_day is not UNSET:
        profile.max_new_per_day = _clean_cap("max_new_per_day", max_new_per_day, errors)
    if work_days is not UNSET:
        profile.work_days = _clean_work_days(work_days, errors)
    if work_start is not UNSET:
        profile.work_start = _clean_time("work_start", work_start, errors)
    if work_end is not UNSET:
        profile.work_end = _clean_time("work_end", work_end, errors)
    if not errors and (profile.work_start is None) != (profile.work_end is None):
        errors["work_end" if profile.work_end is None else "work_start"] = _(
            "give both the start and the end of working hours, or neither"
        )
    if not errors and profile.work_start is not None and profile.work_start == profile.work_end:
        errors["work_end"] = _("the end equals the start: that leaves no working time at all")
    if errors:
        raise ValidationError(errors)
    after = _profile_state(profile)
    if after != before:
        profile.save()
        audit_record(
            actor=actor,
            action="routing.rep_profile.update",
            target=profile,
            before={"user": user.pk, **before},
            after={"user": user.pk, **after},
        )
    return profile


# ---- leave ------------------------------------------------------------------------------------


def _leave_state(leave: Leave) -> dict[str, Any]:
    return {
        "user": leave.user_id,
        "starts_at": leave.starts_at.isoformat(),
        "ends_at": leave.ends_at.isoformat(),
        "reason": leave.reason,
    }


def _local_text(moment: dt.datetime) -> str:
    return f"{moment.astimezone(clock.org_tz()):%Y-%m-%d %H:%M}"


@transaction.atomic
def leave_create(
    *, actor: Any, user: User, starts_at: dt.datetime, ends_at: dt.datetime, reason: str = ""
) -> Leave:
    """C8.1: a rep on leave gets no leads from any strategy (the trace says `on_leave`). Recorded
    by the rep or by whoever manages them; audited. Leaves of one person do not overlap."""
    if not may_record_leave(actor, user):
        raise PermissionDenied("a leave is recorded by the rep or by their manager")
    errors: dict[str, str] = {}
    moments: dict[str, dt.datetime] = {}
    for name, moment in (("starts_at", starts_at), ("ends_at", ends_at)):
        if not isinstance(moment, dt.datetime) or moment.tzinfo is None or moment.utcoffset() is None:
            errors[name] = _("a date and time with its time zone")
            continue
        try:
            moments[name] = moment.astimezone(dt.UTC)
        except (OverflowError, ValueError):
            errors[name] = _("a date and time between now and %(years)s years from now") % {
                "years": MAX_AHEAD_YEARS
            }
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX_LENGTH:
        errors["reason"] = _("at most %(max)s characters") % {"max": REASON_MAX_LENGTH}
    elif _unprintable(reason.replace("\n", " ")):
        errors["reason"] = _("contains control characters")
    if errors:
        raise ValidationError(errors)
    starts_at, ends_at = moments["starts_at"], moments["ends_at"]
    now = clock.now()
    if starts_at > now + dt.timedelta(days=365 * MAX_AHEAD_YEARS):
        raise ValidationError(
            {"starts_at": _("a leave starts within %(years)s years from now") % {"years": MAX_AHEAD_YEARS}}
        )
    if ends_at <= starts_at:
        raise ValidationError({"ends_at": _("a leave ends after it starts")})
    if ends_at - starts_at > dt.timedelta(days=MAX_LEAVE_DAYS):
        raise ValidationError(
            {"ends_at": _("a leave lasts at most %(days)s days") % {"days": MAX_LEAVE_DAYS}}
        )
    if ends_at <= now:
        raise ValidationError({"ends_at": _("this leave is already over: it would change no routing")})
    User.objects.select_for_update().filter(pk=user.pk).first()  # one leave at a time per person
    overlap = (
        Leave.objects.filter(user_id=user.pk, starts_at__lt=ends_at, ends_at__gt=starts_at)
        .order_by("starts_at")
        .first()
    )
    if overlap is not None:
        raise ValidationError(
            {
                "starts_at": _("overlaps the leave from %(start)s to %(end)s")
                % {"start": _local_text(overlap.starts_at), "end": _local_text(overlap.ends_at)}
            }
        )
    leave = Leave.objects.create(user=user, starts_at=starts_at, ends_at=ends_at, reason=reason)
    audit_record(actor=actor, action="routing.leave.create", target=leave, after=_leave_state(leave))
    return leave


@transaction.atomic
def leave_delete(*, actor: Any, leave: Leave) -> None:
    """Withdraw a leave that is not over (a rep back early, a plan cancelled). A leave that is over
    stays: earlier assignment traces say a rep was skipped because of it."""
    user = User.objects.get(pk=leave.user_id)
    if not may_record_leave(actor, user):
        raise PermissionDenied("a leave is withdrawn by the rep or by their manager")
    leave = Leave.objects.select_for_update().get(pk=leave.pk)
    if leave.ends_at <= clock.now():
        raise ValidationError({"leave": _("this leave is over; it stays on record")})
    audit_record(actor=actor, action="routing.leave.delete", target=leave, before=_leave_state(leave))
    leave.delete()


# ---- the specialty review ---------------------------------------------------------------------


@dataclass(frozen=True)
class IndustryRecord:
    """One rep's record in one industry, beside their team's — the numbers behind a suggestion or
    a flag. Rates are won ÷ closed; shares are this industry's part of all wins (with a known
    industry); lift = rep's share ÷ team's share."""

    industry: str
    leads: int
    closed: int
    won: int
    rate: float | None
    share: float | None
    team_closed: int
    team_won: int
    team_rate: float | None
    team_share: float | None
    lift: float | None


@dataclass(frozen=True)
class Suggestion:
    industry: str
    record: IndustryRecord


@dataclass(frozen=True)
class Flag:
    code: str  # blank | no_record | underperforms
    industry: str | None
    record: IndustryRecord | None


@dataclass(frozen=True)
class LeaveRow:
    id: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    reason: str
    current: bool


@dataclass
class RepReview:
    user_id: int
    username: str
    name: str
    role: str
    active: bool
    region_code: str | None
    region_name: str | None
    specialties: list[str]
    max_open_leads: int | None
    max_new_per_day: int | None
    work_days: list[int]
    work_start: dt.time | None
    work_end: dt.time | None
    leads: int
    closed: int
    won: int
    may_edit: bool
    may_record_leave: bool
    tags: list[IndustryRecord] = field(default_factory=list)  # one per tag, in the tags' order
    suggestions: list[Suggestion] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    records: list[IndustryRecord] = field(default_factory=list)  # every industry, most wins first
    leaves: list[LeaveRow] = field(default_factory=list)  # current and coming


@dataclass(frozen=True)
class Review:
    reps: list[RepReview]
    window_start: dt.datetime
    window_days: int
    rule: dict[str, Any]


def review_rule() -> dict[str, Any]:
    return {
        "window_days": WINDOW_DAYS,
        "suggest_min_wins": SUGGEST_MIN_WINS,
        "suggest_min_lift": SUGGEST_MIN_LIFT,
        "contradict_min_closed": CONTRADICT_MIN_CLOSED,
        "contradict_rate_ratio": CONTRADICT_RATE_RATIO,
        "team": "the reps of the rep's region",
    }


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class _Tally:
    leads: int = 0
    closed: int = 0
    won: int = 0

    def add(self, leads: int, closed: int, won: int) -> None:
        self.leads += leads
        self.closed += closed
        self.won += won


def _record(
    industry: str, rep: _Tally, rep_won_total: int, team: _Tally, team_won_total: int
) -> IndustryRecord:
    share = _ratio(rep.won, rep_won_total)
    team_share = _ratio(team.won, team_won_total)
    return IndustryRecord(
        industry=industry,
        leads=rep.leads,
        closed=rep.closed,
        won=rep.won,
        rate=_ratio(rep.won, rep.closed),
        share=share,
        team_closed=team.closed,
        team_won=team.won,
        team_rate=_ratio(team.won, team.closed),
        team_share=team_share,
        lift=share / team_share if share is not None and team_share else None,
    )


def _suggested(record: IndustryRecord) -> bool:
    return (
        record.won >= SUGGEST_MIN_WINS
        and record.lift is not None
        and record.lift >= SUGGEST_MIN_LIFT
        and record.rate is not None
        and (record.team_rate is None or record.rate >= record.team_rate)
    )


def _contradiction(record: IndustryRecord) -> str | None:
    if record.leads == 0:
        return FLAG_NO_RECORD
    if (
        record.closed >= CONTRADICT_MIN_CLOSED
        and record.rate is not None
        and record.team_rate
        and record.rate < record.team_rate * CONTRADICT_RATE_RATIO
    ):
        return FLAG_UNDERPERFORMS
    return None


def _leave_row(leave: Leave, now: dt.datetime) -> LeaveRow:
    return LeaveRow(
        id=leave.pk,
        starts_at=leave.starts_at,
        ends_at=leave.ends_at,
        reason=leave.reason,
        current=leave.starts_at <= now,
    )


def _rep_review(
    actor: Any, user: User, *, tallies: Iterable[_Tally] = (), leaves: list[LeaveRow]
) -> RepReview:
    """A user's row as the review starts it: who they are, their profile as set (tags, caps,
    working hours), their lead counts and what the actor may do. The record, flags and suggestions
    are the review's to add."""
    profile: RepProfile | None = getattr(user, "rep_profile", None)
    tallies = list(tallies)
    return RepReview(
        user_id=user.pk,
        username=user.username,
        name=str(user),
        role=user.role,
        active=user.is_active,
        region_code=user.region.code if user.region else None,
        region_name=user.region.name if user.region else None,
        specialties=list(profile.specialties) if profile else [],
        max_open_leads=profile.max_open_leads if profile else None,
        max_new_per_day=profile.max_new_per_day if profile else None,
        work_days=list(profile.work_days) if profile else [],
        work_start=profile.work_start if profile else None,
        work_end=profile.work_end if profile else None,
        leads=sum(t.leads for t in tallies),
        closed=sum(t.closed for t in tallies),
        won=sum(t.won for t in tallies),
        may_edit=may_manage(actor, user),
        may_record_leave=may_record_leave(actor, user),
        leaves=leaves,
    )


def rep_review_alone(*, actor: Any, user: User) -> RepReview:
    """A user the review does not list — a manager (routable, but not reviewed) or an inactive rep:
    their profile and leaves, no record."""
    return _rep_review(actor, user, leaves=rep_leaves(user=user))


def specialty_review(*, actor: Any, user_ids: Iterable[int] | None = None, days: int = WINDOW_DAYS) -> Review:
    """C8.5: for each active rep the actor may see (rep: self; manager: their region's reps;
    directors, product managers, admins: all) — the profile, each tag with its numbers, the
    suggested tags and the flags (the rule is in this module's docstring). `user_ids` narrows the
    list (one row of the page). Three queries whatever the number of reps and leads: the reps with
    profiles, the record per rep × industry (one aggregate), the current and coming leaves."""
    now = clock.now()
    since = now - dt.timedelta(days=days)
    reps_qs = (
        reps_visible_to(actor)
        .filter(role=Role.REP, is_active=True)
        .select_related("region", "rep_profile")
        .order_by("id")
    )
    if user_ids is not None:
        reps_qs = reps_qs.filter(pk__in=list(user_ids))
    reps = sorted(reps_qs, key=lambda u: (u.region.code if u.region else "~", str(u), u.pk))
    rule = review_rule() | {"window_days": days}
    if not reps:
        return Review(reps=[], window_start=since, window_days=days, rule=rule)

    # The record of every rep of the teams involved (the reps' regions), in one aggregate.
    leads = Lead.objects.filter(merged_into__isnull=True, owner__role=Role.REP).filter(
        Q(status=LeadStatus.OPEN) | Q(closed_at__gte=since)
    )
    if not sees_all(actor) or user_ids is not None:
        regions = {rep.region_id for rep in reps}
        team = Q(owner__region_id__in=[r for r in regions if r is not None])
        if None in regions:
            team |= Q(owner__region__isnull=True)
        leads = leads.filter(team)
    rows = (
        leads.values("owner_id", "owner__region_id", "customer__industry")
        .annotate(
            n=Count("id"),
            closed=Count("id", filter=Q(status__in=[LeadStatus.WON, LeadStatus.LOST])),
            won=Count("id", filter=Q(status=LeadStatus.WON)),
        )
        .order_by()
    )
    by_rep: dict[int, dict[str, _Tally]] = defaultdict(lambda: defaultdict(_Tally))
    by_team: dict[int | None, dict[str, _Tally]] = defaultdict(lambda: defaultdict(_Tally))
    for row in rows:
        industry = row["customer__industry"] or ""
        by_rep[row["owner_id"]][industry].add(row["n"], row["closed"], row["won"])
        by_team[row["owner__region_id"]][industry].add(row["n"], row["closed"], row["won"])

    leaves: dict[int, list[LeaveRow]] = defaultdict(list)
    for leave in Leave.objects.filter(user_id__in=[r.pk for r in reps], ends_at__gt=now).order_by(
        "starts_at"
    ):
        leaves[leave.user_id].append(_leave_row(leave, now))

    reviews: list[RepReview] = []
    for user in reps:
        mine = by_rep.get(user.pk, {})
        team = by_team.get(user.region_id, {})
        review = _rep_review(actor, user, tallies=mine.values(), leaves=leaves.get(user.pk, []))
        tags = review.specialties
        # Shares count wins with a known industry only: a lead without one says nothing of skill.
        rep_won_total = sum(t.won for industry, t in mine.items() if industry)
        team_won_total = sum(t.won for industry, t in team.items() if industry)
        records = {
            industry: _record(industry, tally, rep_won_total, team.get(industry, _Tally()), team_won_total)
            for industry, tally in mine.items()
            if industry
        }
        review.records = sorted(records.values(), key=lambda r: (-r.won, -r.leads, r.industry))
        if not tags:
            review.flags.append(Flag(code=FLAG_BLANK, industry=None, record=None))
        for tag in tags:
            record = records.get(tag) or _record(
                tag, _Tally(), rep_won_total, team.get(tag, _Tally()), team_won_total
            )
            review.tags.append(record)
            code = _contradiction(record)
            if code is not None:
                review.flags.append(Flag(code=code, industry=tag, record=record))
        review.suggestions = [
            Suggestion(industry=record.industry, record=record)
            for record in sorted(records.values(), key=lambda r: (-(r.lift or 0), -r.won, r.industry))
            if record.industry not in tags and _suggested(record)
        ]
        reviews.append(review)
    return Review(reps=reviews, window_start=since, window_days=days, rule=rule)


# ---- plain words -------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def suggestion_sentence(suggestion: Suggestion) -> str:
    r = suggestion.record
    return _(
        "%(industry)s: won %(won)s of %(closed)s closed (%(rate)s; team %(rate_team)s); "
        "%(share)s of their wins against %(share_team)s of the team's — %(lift)s×"
    ) % {
        "industry": r.industry,
        "won": r.won,
        "closed": r.closed,
        "rate": _percent(r.rate),
        "rate_team": _percent(r.team_rate),
        "share": _percent(r.share),
        "share_team": _percent(r.team_share),
        "lift": f"{r.lift:.1f}" if r.lift is not None else "—",
    }


def flag_sentence(flag: Flag, *, days: int = WINDOW_DAYS) -> str:
    if flag.code == FLAG_BLANK:
        return _("No specialty tags: a rule that matches industries to specialties never picks this rep.")
    r = flag.record
    assert r is not None
    if flag.code == FLAG_NO_RECORD:
        return _("Tagged %(industry)s, but has no lead of that industry in the last %(days)s days.") % {
            "industry": r.industry,
            "days": days,
        }
    return _(
        "Tagged %(industry)s, but won %(won)s of %(closed)s closed (%(rate)s) against the team's "
        "%(rate_team)s."
    ) % {
        "industry": r.industry,
        "won": r.won,
        "closed": r.closed,
        "rate": _percent(r.rate),
        "rate_team": _percent(r.team_rate),
    }
