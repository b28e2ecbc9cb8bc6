"""REST endpoints of rep routing profiles, leave and specialty tags (SPEC C8.5), mounted at
`/api/v1/routing`. Thin (STYLE.md 2): the same selector and services as the pages
(`routing.reps`). A person the caller may not see is a 404, like one who does not exist; one they
may see but not change is a 403."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema, Status

from salesloop.core.schemas import RecordId, Text
from salesloop.routing import reps
from salesloop.routing.roster import ROSTER_PROFILE_FIELDS  # the routing profile, in its order

router = Router()


class IndustryRecordOut(Schema):
    industry: str
    leads: int = Field(description="open leads, and leads closed in the window")
    closed: int
    won: int
    rate: float | None = Field(description="won ÷ closed")
    share: float | None = Field(description="this industry's part of the rep's wins")
    team_closed: int
    team_won: int
    team_rate: float | None
    team_share: float | None = Field(description="this industry's part of the team's wins")
    lift: float | None = Field(description="share ÷ team_share")


class SuggestionOut(Schema):
    industry: str
    record: IndustryRecordOut
    text: str = Field(description="the numbers in a sentence, in the reader's language")


class FlagOut(Schema):
    code: str = Field(description="blank | no_record | underperforms")
    industry: str | None
    record: IndustryRecordOut | None
    text: str


class LeaveOut(Schema):
    id: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    reason: str
    current: bool


class ProfileOut(Schema):
    specialties: list[str]
    max_open_leads: int | None
    max_new_per_day: int | None
    work_days: list[int] = Field(description="ISO weekdays 1-7; empty: every day")
    work_start: dt.time | None
    work_end: dt.time | None


class RepOut(Schema):
    user_id: int
    username: str
    name: str
    role: str
    active: bool
    region: str | None
    region_name: str | None
    profile: ProfileOut
    leads: int
    closed: int
    won: int
    may_edit: bool = Field(description="the caller may set tags, caps and working hours")
    may_record_leave: bool
    tags: list[IndustryRecordOut] = Field(description="the record behind each tag, in the tags' order")
    suggestions: list[SuggestionOut]
    flags: list[FlagOut]
    records: list[IndustryRecordOut] = Field(description="every industry of the rep's record")
    leaves: list[LeaveOut] = Field(description="current and coming leave")


class ReviewOut(Schema):
    window_start: dt.datetime
    window_days: int
    rule: dict[str, Any] = Field(description="the thresholds of suggestions and flags")
    reps: list[RepOut]


class ReviewQuery(Schema):
    days: int = Field(default=reps.WINDOW_DAYS, ge=1, le=3650, description="the record's window")


class ProfileIn(Schema):
    specialties: list[str] = Field(
        default=[], description="industries, written as customers' industries are (医疗器械)"
    )
    max_open_leads: int | None = Field(default=None, description="null: the rule set's default")
    max_new_per_day: int | None = None
    work_days: list[int] = Field(default=[], description="ISO weekdays 1-7; empty: every day")
    work_start: dt.time | None = Field(default=None, description="HH:MM in the organisation's time zone")
    work_end: dt.time | None = None


class LeaveIn(Schema):
    starts_at: dt.datetime = Field(description="with its time zone")
    ends_at: dt.datetime
    reason: Text(reps.REASON_MAX_LENGTH) = ""  # type: ignore[valid-type]


def _rep_out(review: reps.RepReview, days: int) -> dict[str, Any]:
    out = dataclasses.asdict(review)
    out["region"] = out.pop("region_code")
    out["profile"] = {name: out.pop(name) for name in ROSTER_PROFILE_FIELDS}
    out["suggestions"] = [
        {**dataclasses.asdict(s), "text": reps.suggestion_sentence(s)} for s in review.suggestions
    ]
    out["flags"] = [{**dataclasses.asdict(f), "text": reps.flag_sentence(f, days=days)} for f in review.flags]
    return out


def _one(actor: Any, user_id: int) -> dict[str, Any]:
    user = reps.rep_get(actor=actor, user_id=user_id)
    review = reps.specialty_review(actor=actor, user_ids=[user.pk])
    if review.reps:
        return _rep_out(review.reps[0], review.window_days)
    return _rep_out(reps.rep_review_alone(actor=actor, user=user), review.window_days)


@router.get(
    "/reps",
    response=ReviewOut,
    summary="Specialty review: each rep's profile, tags with their record, suggested tags, flags",
)
def rep_list(request: HttpRequest, query: Query[ReviewQuery]) -> dict[str, Any]:
    actor = request.auth  # type: ignore[attr-defined]
    review = reps.specialty_review(actor=actor, days=query.days)
    return {
        "window_start": review.window_start,
        "window_days": review.window_days,
        "rule": review.rule,
        "reps": [_rep_out(r, review.window_days) for r in review.reps],
    }


@router.get("/reps/{user_id}", response=RepOut, summary="One rep's routing profile, record and leave")
def rep_detail(request: HttpRequest, user_id: RecordId) -> dict[str, Any]:
    return _one(request.auth, user_id)  # type: ignore[attr-defined]


@router.put(
    "/reps/{user_id}",
    response=RepOut,
    summary="Replace a rep's tags, caps and working hours (absent fields are cleared); their manager",
)
def rep_profile_put(request: HttpRequest, user_id: RecordId, payload: ProfileIn) -> dict[str, Any]:
    actor = request.auth  # type: ignore[attr-defined]
    user = reps.rep_get(actor=actor, user_id=user_id)
    reps.rep_profile_update(actor=actor, user=user, **payload.dict())
    return _one(actor, user.pk)


@router.patch("/reps/{user_id}", response=RepOut, summary="Change some of a rep's profile fields")
def rep_profile_patch(request: HttpRequest, user_id: RecordId, payload: ProfileIn) -> dict[str, Any]:
    actor = request.auth  # type: ignore[attr-defined]
    user = reps.rep_get(actor=actor, user_id=user_id)
    reps.rep_profile_update(actor=actor, user=user, **payload.dict(exclude_unset=True))
    return _one(actor, user.pk)


@router.post(
    "/reps/{user_id}/leaves",
    response={201: LeaveOut},
    summary="Record a leave (the rep or their manager): no leads are routed to them meanwhile",
)
def leave_create(request: HttpRequest, user_id: RecordId, payload: LeaveIn) -> Status:
    actor = request.auth  # type: ignore[attr-defined]
    user = reps.rep_get(actor=actor, user_id=user_id)
    leave = reps.leave_create(
        actor=actor, user=user, starts_at=payload.starts_at, ends_at=payload.ends_at, reason=payload.reason
    )
    from salesloop.core import clock

    return Status(
        201,
        {
            "id": leave.pk,
            "starts_at": leave.starts_at,
            "ends_at": leave.ends_at,
            "reason": leave.reason,
            "current": leave.starts_at <= clock.now(),
        },
    )


@router.delete(
    "/reps/{user_id}/leaves/{leave_id}",
    response={204: None},
    summary="Withdraw a leave that is not over yet",
)
def leave_delete(request: HttpRequest, user_id: RecordId, leave_id: RecordId) -> HttpResponse:
    actor = request.auth  # type: ignore[attr-defined]
    user = reps.rep_get(actor=actor, user_id=user_id)
    reps.leave_delete(actor=actor, leave=reps.leave_get(user=user, leave_id=leave_id))
    return HttpResponse(status=204)
