"""Rep routing pages (SPEC C8.5): the manager's specialty review and a rep's routing profile.

Views are thin (STYLE.md 2): parse, call the selector and services the REST API calls
(`routing.reps`, so page and API cannot disagree), shape for the template. Scope comes from the
selector (a rep out of scope is a 404); a role that may look but not act gets no button, and a
hand-made POST gets the service's PermissionDenied (403).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from salesloop.core.roles import Role
from salesloop.routing import reps

WEEKDAYS = [
    (1, gettext_lazy("Mon")),
    (2, gettext_lazy("Tue")),
    (3, gettext_lazy("Wed")),
    (4, gettext_lazy("Thu")),
    (5, gettext_lazy("Fri")),
    (6, gettext_lazy("Sat")),
    (7, gettext_lazy("Sun")),
]
_TAG_SEPARATORS = re.compile(r"[,，、;；\n]+")
DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


# --- forms -----------------------------------------------------------------------------------


class ProfileForm(forms.Form):
    """Parses the page's fields; the rules (ranges, known industries, both ends of the hours) are
    the service's, so the page and the API refuse the same things with the same words."""

    specialties = forms.CharField(
        label=gettext_lazy("Specialty tags"),
        required=False,
        max_length=2000,
        help_text=gettext_lazy("Industries as customers' industries are written, separated by commas"),
        widget=forms.TextInput(attrs={"list": "industries", "autocomplete": "off"}),
    )
    max_open_leads = forms.IntegerField(
        label=gettext_lazy("Open leads at most"),
        required=False,
        help_text=gettext_lazy("Empty: the rule set's default"),
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "min": 1}),
    )
    max_new_per_day = forms.IntegerField(
        label=gettext_lazy("New leads per day at most"),
        required=False,
        help_text=gettext_lazy("Empty: the rule set's default"),
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "min": 1}),
    )
    work_days = forms.TypedMultipleChoiceField(
        label=gettext_lazy("Working days"),
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        help_text=gettext_lazy("None ticked: every day"),
        widget=forms.CheckboxSelectMultiple,
    )
    work_start = forms.TimeField(
        label=gettext_lazy("Working hours from"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    work_end = forms.TimeField(
        label=gettext_lazy("to"),
        required=False,
        help_text=gettext_lazy("Both empty: any time"),
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )

    def changes(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["specialties"] = [t for t in _TAG_SEPARATORS.split(data.get("specialties") or "") if t.strip()]
        return data


class LeaveForm(forms.Form):
    starts_at = forms.DateTimeField(
        label=gettext_lazy("From"),
        input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )
    ends_at = forms.DateTimeField(
        label=gettext_lazy("Until"),
        input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )
    reason = forms.CharField(label=gettext_lazy("Reason"), required=False, max_length=reps.REASON_MAX_LENGTH)


def _service_errors(form: forms.Form, exc: ValidationError) -> list[str]:
    """A service's field errors beside the form's fields; anything else on top."""
    general: list[str] = []
    error_dict = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
    for key, problems in error_dict.items():
        for message in problems:
            if key in form.fields:
                form.add_error(key, message)
            else:
                general.append(message)
    return general


# --- shaping -----------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


@dataclass(frozen=True)
class RecordLine:
    """An IndustryRecord with its numbers written for people."""

    industry: str
    leads: int
    closed: int
    won: int
    rate: str
    team_rate: str
    share: str
    team_share: str
    lift: str
    tagged: bool
    suggested: bool
    flagged: bool


@dataclass(frozen=True)
class SuggestionLine:
    industry: str
    text: str


@dataclass(frozen=True)
class FlagLine:
    code: str
    industry: str | None
    text: str


@dataclass(frozen=True)
class TagChip:
    industry: str
    flagged: bool


@dataclass
class RepRow:
    review: reps.RepReview
    chips: list[TagChip]
    suggestions: list[SuggestionLine]
    flags: list[FlagLine]
    records: list[RecordLine]
    hours: str
    days: str


def _days_text(days: list[int]) -> str:
    if not days:
        return _("every day")
    names = dict(WEEKDAYS)
    return "、".join(str(names[d]) for d in days)


def _hours_text(review: reps.RepReview) -> str:
    if review.work_start is None or review.work_end is None:
        return _("any time")
    return f"{review.work_start:%H:%M}–{review.work_end:%H:%M}"


def _row(review: reps.RepReview, days: int) -> RepRow:
    flagged = {f.industry for f in review.flags if f.industry}
    suggested = {s.industry for s in review.suggestions}
    tags = set(review.specialties)
    lines = [
        RecordLine(
            industry=r.industry,
            leads=r.leads,
            closed=r.closed,
            won=r.won,
            rate=_percent(r.rate),
            team_rate=_percent(r.team_rate),
            share=_percent(r.share),
            team_share=_percent(r.team_share),
            lift="—" if r.lift is None else f"{r.lift:.1f}×",
            tagged=r.industry in tags,
            suggested=r.industry in suggested,
            flagged=r.industry in flagged,
        )
        for r in [*review.records, *(t for t in review.tags if t.leads == 0)]
    ]
    return RepRow(
        review=review,
        chips=[TagChip(industry=t, flagged=t in flagged) for t in review.specialties],
        suggestions=[
            SuggestionLine(industry=s.industry, text=reps.suggestion_sentence(s)) for s in review.suggestions
        ],
        flags=[
            FlagLine(code=f.code, industry=f.industry, text=reps.flag_sentence(f, days=days))
            for f in review.flags
        ],
        records=lines,
        hours=_hours_text(review),
        days=_days_text(review.work_days),
    )


def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))  # the same URL answers with a fragment or a page
    return response


def _rule_context(review: reps.Review) -> dict[str, Any]:
    rule = review.rule
    return {
        "window_days": review.window_days,
        "min_wins": rule["suggest_min_wins"],
        "min_lift": rule["suggest_min_lift"],
        "min_closed": rule["contradict_min_closed"],
        "rate_ratio": f"{rule['contradict_rate_ratio'] * 100:.0f}%",
    }


# --- the review ----------------------------------------------------------------------------------


@login_required
@require_GET
def reps_review_page(request: HttpRequest) -> HttpResponse:
    """C8.5 专长标签: the reps in the viewer's scope with their tags, the tags their wins suggest
    (with the numbers) and the flags. A rep has only their own profile: they go there."""
    user: Any = request.user
    if user.role == Role.REP and not user.is_superuser:
        return redirect("routing-rep", user_id=user.pk)
    review = reps.specialty_review(actor=user)
    rows = [_row(r, review.window_days) for r in review.reps]
    only_flagged = request.GET.get("only") == "flagged"
    shown = [row for row in rows if row.flags or row.suggestions] if only_flagged else rows
    context = {
        "rows": shown,
        "total": len(rows),
        "blank": sum(1 for row in rows if not row.review.specialties),
        "flagged": sum(1 for row in rows if any(f.code != reps.FLAG_BLANK for f in row.flags)),
        "with_suggestions": sum(1 for row in rows if row.suggestions),
        "only_flagged": only_flagged,
        **_rule_context(review),
    }
    return _render(request, "routing/reps_review.html", context)


def _review_one(request: HttpRequest, user_id: int) -> tuple[Any, reps.Review]:
    user = reps.rep_get(actor=request.user, user_id=user_id)  # Http404 out of scope
    return user, reps.specialty_review(actor=request.user, user_ids=[user.pk])


def _row_fragment(request: HttpRequest, user_id: int, notice: str = "", status: int = 200) -> HttpResponse:
    _user, review = _review_one(request, user_id)
    if not review.reps:  # an inactive rep is not reviewed
        return HttpResponse(status=204)
    return _render(
        request,
        "routing/reps_row.html",
        {
            "row": _row(review.reps[0], review.window_days),
            "notice": notice,
            "notice_error": status != 200,
            **_rule_context(review),
        },
        status,
    )


@login_required
@require_POST
def reps_tag_page(request: HttpRequest, user_id: int) -> HttpResponse:
    """Accept a suggestion (`add`) or drop a flagged tag (`remove`) from the review: the rep's row
    comes back re-computed (htmx), or the whole page (without JavaScript)."""
    user = reps.rep_get(actor=request.user, user_id=user_id)
    profile = getattr(user, "rep_profile", None)
    tags = list(profile.specialties) if profile else []
    industry = request.POST.get("industry", "").strip()
    if not industry:
        if getattr(request, "htmx", False):
            return _row_fragment(request, user.pk, _("Choose an industry."), 422)
        messages.error(request, _("Choose an industry."))
        return redirect("routing-reps")
    if request.POST.get("action") == "remove":
        new_tags = [t for t in tags if t != industry]
        done = _("Tag %(industry)s removed.") % {"industry": industry}
    else:
        new_tags = [*tags, industry] if industry not in tags else tags
        done = _("Tag %(industry)s added.") % {"industry": industry}
    status = 200
    try:
        reps.rep_profile_update(actor=request.user, user=user, specialties=new_tags)
    except ValidationError as exc:
        done, status = " ".join(exc.messages), 422
    if getattr(request, "htmx", False):
        return _row_fragment(request, user.pk, done, status)
    if status == 200:
        messages.success(request, done)
    else:
        messages.error(request, done)
    return redirect("routing-reps")


# --- one rep's profile -------------------------------------------------------------------------


def _profile_initial(user: Any) -> dict[str, Any]:
    profile = getattr(user, "rep_profile", None)
    if profile is None:
        return {}
    return {
        "specialties": "、".join(profile.specialties),
        "max_open_leads": profile.max_open_leads,
        "max_new_per_day": profile.max_new_per_day,
        "work_days": list(profile.work_days),
        "work_start": profile.work_start,
        "work_end": profile.work_end,
    }


def _profile_render(
    request: HttpRequest,
    user: Any,
    review: reps.Review,
    *,
    form: ProfileForm | None = None,
    leave_form: LeaveForm | None = None,
    problems: list[str] | None = None,
    leave_problems: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    rep_review = review.reps[0] if review.reps else None
    row = _row(rep_review, review.window_days) if rep_review else None
    may_edit = reps.may_manage(request.user, user)
    industries = sorted({line.industry for line in row.records} if row else set())
    context = {
        "rep": user,
        "row": row,
        "may_edit": may_edit,
        "may_record_leave": reps.may_record_leave(request.user, user),
        "form": form or ProfileForm(initial=_profile_initial(user)),
        "leave_form": leave_form or LeaveForm(),
        "problems": problems or [],
        "leave_problems": leave_problems or [],
        "industries": industries,
        "leaves": rep_review.leaves if rep_review else reps.rep_leaves(user=user),
        "days_text": _days_text(list(getattr(getattr(user, "rep_profile", None), "work_days", []) or [])),
        "hours_text": _hours_text(rep_review) if rep_review else "",
        "is_self": user.pk == request.user.pk,
        **_rule_context(review),
    }
    return _render(request, "routing/reps_profile.html", context, status)


@login_required
@require_http_methods(["GET", "POST"])
def reps_profile_page(request: HttpRequest, user_id: int) -> HttpResponse:
    """One rep's tags, caps, working hours and leave, with their record per industry."""
    user, review = _review_one(request, user_id)
    if request.method == "GET":
        return _profile_render(request, user, review)
    form = ProfileForm(request.POST)
    problems: list[str] = []
    if form.is_valid():
        try:
            reps.rep_profile_update(actor=request.user, user=user, **form.changes())
        except ValidationError as exc:
            problems = _service_errors(form, exc)
        else:
            messages.success(request, _("Saved."))
            return redirect("routing-rep", user_id=user.pk)
    return _profile_render(request, user, review, form=form, problems=problems, status=422)


@login_required
@require_POST
def reps_leave_create_page(request: HttpRequest, user_id: int) -> HttpResponse:
    user, review = _review_one(request, user_id)
    form = LeaveForm(request.POST)
    problems: list[str] = []
    if form.is_valid():
        try:
            reps.leave_create(actor=request.user, user=user, **form.cleaned_data)
        except ValidationError as exc:
            problems = _service_errors(form, exc)
        else:
            messages.success(request, _("Leave recorded: no leads are routed to them meanwhile."))
            return redirect("routing-rep", user_id=user.pk)
    return _profile_render(request, user, review, leave_form=form, leave_problems=problems, status=422)


@login_required
@require_POST
def reps_leave_delete_page(request: HttpRequest, user_id: int, leave_id: int) -> HttpResponse:
    user = reps.rep_get(actor=request.user, user_id=user_id)
    try:
        reps.leave_delete(actor=request.user, leave=reps.leave_get(user=user, leave_id=leave_id))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Leave withdrawn."))
    return redirect("routing-rep", user_id=user.pk)
