"""Lead pages: home, the lead list, the lead detail and its stage-move form.

Views are thin (STYLE.md 2): parse the request, check permission, call a selector or service and
shape the result for the template. The shaping is presentational only — stage names in the
user's language, masked phones, money and phone formatting — because templates cannot call
methods with arguments and must not issue queries inside loops.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import phonenumbers
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from salesloop.accounts.models import Region, User
from salesloop.core import clock
from salesloop.core.roles import Role, mask_phone, sees_all
from salesloop.crm.models import Channel, Lead, LeadStatus
from salesloop.crm.selectors import (
    CursorError,
    FilterError,
    LeadFilters,
    lead_editable,
    lead_get,
    lead_list,
    lead_stage_counts,
)
from salesloop.crm.services import contact_card
from salesloop.pipeline.models import Stage, StageMove
from salesloop.pipeline.selectors import (
    lead_next_stage_needs,
    lead_stage_dwell,
    lead_stage_placed,
    lead_timeline,
    pipeline_default,
    pipeline_stages,
    stage_counts_by_code,
)
from salesloop.pipeline.services import StageMoveRefused, lead_move_stage
from salesloop.routing.views.assignments import lead_assignment_panel
from salesloop.workspace.filters import custom_filter_params

RECENT_LEADS = 10
UNASSIGNED = "none"  # owner filter value for leads still in the region's pool


# --- presentation helpers -------------------------------------------------------------------


def _language() -> str:
    return translation.get_language() or settings.LANGUAGE_CODE


def _stage_label(stage: Stage) -> str:
    return stage.label(_language())


def _money(amount: Decimal | None) -> str:
    """¥ with thousands separators; cents only when there are any (estimates are whole yuan)."""
    if amount is None:
        return ""
    if amount == amount.to_integral_value():
        return f"¥{amount:,.0f}"
    return f"¥{amount:,.2f}"


def _phone_display(e164: str) -> str:
    """A full number as people write it: `139 1234 5678` at home, `+44 20 …` abroad."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if number.country_code == 86
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(number, style)


def _lead_list_url(**params: str) -> str:
    query = urlencode({key: value for key, value in params.items() if value})
    return reverse("lead-list") + (f"?{query}" if query else "")


def _wants_fragment(request: HttpRequest, target: str) -> bool:
    """An htmx request aimed at `target` gets only that fragment. A history restore asks for the
    whole page, so it must not get the fragment."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request and htmx.target == target


def _form_problems(form: forms.Form) -> list[str]:
    """Each form error as "field: message", for a notice above the form."""
    return [
        _("%(field)s: %(message)s") % {"field": form.fields[name].label, "message": message}
        if name in form.fields
        else str(message)
        for name, errors in form.errors.items()
        for message in errors
    ]


# --- home -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageCard:
    label: str
    count: int
    url: str


@dataclass(frozen=True)
class LeadRow:
    """One lead as lists show it: the phone always masked, and nothing logged (crm.services)."""

    lead: Lead
    stage_label: str
    phone_masked: str
    amount: str


def _lead_rows(leads: list[Lead]) -> list[LeadRow]:
    return [
        LeadRow(
            lead=lead,
            stage_label=_stage_label(lead.stage),
            phone_masked=mask_phone(lead.contact.phone) if lead.contact else "",
            amount=_money(lead.expected_amount),
        )
        for lead in leads
    ]


def _scope_heading(user: Any) -> str:
    if user.role == Role.REP and not user.is_superuser:
        return _("My open leads")
    if user.role == Role.MANAGER and not user.is_superuser:
        return _("Open leads in my region")
    return _("All open leads")


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    stages = pipeline_stages(pipeline_default().pk)
    # Scoping already limits a rep to their own leads and a manager to their region.
    # Leads on a stage of an older version of the pipeline count in the stage of that code in force.
    counts = stage_counts_by_code(lead_stage_counts(user=user, only_own=False), stages)
    cards = [
        StageCard(
            label=_stage_label(stage),
            count=counts.get(stage.code, 0),
            url=_lead_list_url(stage=stage.code, status=LeadStatus.OPEN),
        )
        for stage in stages
    ]
    recent = lead_list(user=user, filters=LeadFilters(), limit=RECENT_LEADS)
    return render(
        request,
        "crm/home.html",
        {
            "scope_heading": _scope_heading(user),
            "stage_cards": cards,
            "open_total": sum(card.count for card in cards),
            "open_url": _lead_list_url(status=LeadStatus.OPEN),
            "won_url": _lead_list_url(status=LeadStatus.WON),
            "lost_url": _lead_list_url(status=LeadStatus.LOST),
            "recent_rows": _lead_rows(recent.items),
        },
    )


# --- lead list ------------------------------------------------------------------------------


def _owner_choices(user: Any) -> list[tuple[str, str]]:
    """Names for the owner filter. Presentational only: lead_list scopes the leads whatever owner
    is asked for. To move into accounts.selectors (`lead_owner_choices`) — see the handover note."""
    people = User.objects.filter(is_active=True, role__in=[Role.REP, Role.MANAGER])
    if not sees_all(user):
        people = people.filter(region_id=user.region_id)
    return [(str(person.pk), str(person)) for person in people.order_by("username")]


def _region_choices() -> list[tuple[str, str]]:
    return [(str(region.pk), region.name) for region in Region.objects.order_by("code")]


class LeadFilterForm(forms.Form):
    """Parses the list's query string; an unknown value is a form error, shown, never a 500."""

    q = forms.CharField(label=gettext_lazy("Search"), required=False, max_length=100, strip=True)
    stage = forms.ChoiceField(label=gettext_lazy("Stage"), required=False)
    status = forms.ChoiceField(label=gettext_lazy("Status"), required=False)
    source = forms.ChoiceField(label=gettext_lazy("Source"), required=False)
    owner = forms.ChoiceField(label=gettext_lazy("Owner"), required=False)
    region = forms.ChoiceField(label=gettext_lazy("Region"), required=False)
    health = forms.ChoiceField(
        label=gettext_lazy("Health"),
        required=False,
        choices=[
            ("", gettext_lazy("Any health")),
            ("red", gettext_lazy("Red (below the line)")),
            ("ok", gettext_lazy("Healthy")),
            ("unknown", gettext_lazy("Not scored yet")),
        ],
    )

    def __init__(self, data: Any, *, user: Any, stages: list[Stage]) -> None:
        super().__init__(data)
        self.fields["q"].widget.attrs.update(
            {"placeholder": _("Lead, customer, contact or phone"), "type": "search"}
        )
        self.fields["stage"].choices = [("", _("All stages"))] + [
            (stage.code, _stage_label(stage)) for stage in stages
        ]
        self.fields["status"].choices = [("", _("Any status")), *LeadStatus.choices]
        self.fields["source"].choices = [("", _("All sources")), *Channel.choices]
        # A rep sees only their own leads: an owner filter would be noise.
        if user.role == Role.REP and not user.is_superuser:
            del self.fields["owner"]
        else:
            self.fields["owner"].choices = [
                ("", _("Everyone")),
                (UNASSIGNED, _("Unassigned (pool)")),
                *_owner_choices(user),
            ]
        if sees_all(user):
            self.fields["region"].choices = [("", _("All regions")), *_region_choices()]
        else:
            del self.fields["region"]

    def lead_filters(self) -> LeadFilters:
        data = self.cleaned_data
        owner = data.get("owner") or ""
        return LeadFilters(
            stage=data["stage"] or None,
            status=data["status"] or None,
            source=data["source"] or None,
            owner=int(owner) if owner and owner != UNASSIGNED else None,
            unassigned=owner == UNASSIGNED,
            region=int(data["region"]) if data.get("region") else None,
            q=data["q"] or None,
            health=data.get("health") or None,
            custom=custom_filter_params(self.data) or None,  # cf.<name>...: checked by the selector (C10.1)
        )

    def query(self) -> dict[str, str]:
        """The valid filters as query parameters, to carry into pagination links."""
        valid = {name: str(value) for name, value in self.cleaned_data.items() if value}
        return {**valid, **custom_filter_params(self.data)}


@login_required
@require_GET
def lead_list_page(request: HttpRequest) -> HttpResponse:
    stages = pipeline_stages(pipeline_default().pk)
    form = LeadFilterForm(request.GET, user=request.user, stages=stages)
    cursor = request.GET.get("cursor", "").strip() or None
    rows: list[LeadRow] = []
    problems: list[str] = []
    next_url = ""
    if form.is_valid():
        try:
            page = lead_list(user=request.user, filters=form.lead_filters(), cursor=cursor)
        except CursorError:
            problems.append(_("This page link is not valid any more. Start again from the first page."))
        except FilterError as exc:
            problems.append(_("This filter cannot be applied: %(field)s") % {"field": exc.field})
        else:
            rows = _lead_rows(page.items)
            if page.next_cursor:
                next_url = _lead_list_url(**form.query(), cursor=page.next_cursor)
    else:
        problems = _form_problems(form)
    # Keyset pages have no numbers: the way back is the first page with the same filters.
    first_url = _lead_list_url(**(form.query() if form.is_valid() else {})) if cursor else ""
    context = {
        "form": form,
        "rows": rows,
        "problems": problems,
        "next_url": next_url,
        "first_url": first_url,
        "show_owner": "owner" in form.fields,
        "show_region": "region" in form.fields,
    }
    fragment = _wants_fragment(request, "lead-results")
    template = "crm/_lead_results.html" if fragment else "crm/lead_list.html"
    response = render(request, template, context, status=400 if problems else 200)
    # The same URL answers with a fragment or a page: caches must keep them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response


# --- lead detail ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StageStep:
    label: str
    state: str  # done | current | todo
    dwell_days: float | None


@dataclass(frozen=True)
class TimelineEntry:
    move: StageMove
    direction: str  # enter | forward | backward | same (see explanations "stage_move")
    from_label: str
    to_label: str
    status_change: str  # "", or the status entered: won, lost, open (reopened)
    left_after_days: float | None  # time spent in the stage it left
    filled: list[tuple[str, str]]  # (label, what was filled) that met the entry requirements


def _stage_steps(lead: Lead, stages: list[Stage], dwell: dict[str, float]) -> list[StageStep]:
    """The stages in force; the lead's stage (perhaps of an older version) is found by its code."""
    placed = lead_stage_placed(lead, stages)
    steps = []
    for stage in stages:
        if placed is not None and stage.pk == placed.pk:
            state = "current"
        elif placed is not None and stage.position < placed.position:
            state = "done"
        else:
            state = "todo"
        steps.append(StageStep(label=_stage_label(stage), state=state, dwell_days=dwell.get(stage.code)))
    return steps


def _filled_lines(filled: dict[str, Any]) -> list[tuple[str, str]]:
    english = _language().startswith("en")
    lines = []
    for item in (filled or {}).get("items", []):
        label = item.get("label_en" if english else "label_zh") or item.get("key", "")
        value = item.get("value")
        if isinstance(value, list):  # attachments
            value = "、".join(str(a.get("title", "")) for a in value if isinstance(a, dict))
        lines.append((str(label), str(value if value is not None else "")))
    return lines


def _timeline_entries(moves: list[StageMove]) -> list[TimelineEntry]:
    entries = []
    for move in reversed(moves):  # newest first: what happened last matters most
        explanation = move.explanation or {}
        dwell_seconds = explanation.get("dwell_seconds")
        entries.append(
            TimelineEntry(
                move=move,
                direction=str(explanation.get("direction", "forward")),
                from_label=_stage_label(move.from_stage) if move.from_stage else "",
                to_label=_stage_label(move.to_stage),
                status_change=move.to_status
                if move.from_status and move.from_status != move.to_status
                else "",
                left_after_days=dwell_seconds / 86400 if dwell_seconds is not None else None,
                filled=_filled_lines(move.filled),
            )
        )
    return entries


class StageMoveForm(forms.Form):
    stage = forms.ChoiceField(label=gettext_lazy("Stage"))
    status = forms.ChoiceField(label=gettext_lazy("Status"), required=False)
    reason = forms.CharField(label=gettext_lazy("Reason"), required=False, max_length=200)
    note = forms.CharField(
        label=gettext_lazy("Note"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, data: Any = None, *, lead: Lead, stages: list[Stage]) -> None:
        super().__init__(data, initial={"stage": lead.stage.code})
        self.stages = {stage.code: stage for stage in stages}
        self.fields["stage"].choices = [(stage.code, _stage_label(stage)) for stage in stages]
        if lead.status == LeadStatus.OPEN:
            self.fields["status"].choices = [
                ("", _("Keep open")),
                (LeadStatus.WON, _("Won")),
                (LeadStatus.LOST, _("Lost")),
            ]
        else:
            self.fields["status"].choices = [
                ("", _("Keep %(status)s") % {"status": lead.get_status_display()}),
                (LeadStatus.OPEN, _("Reopen")),
            ]
        self.fields["reason"].widget.attrs["placeholder"] = _("Required when the lead is lost or moves back")

    def clean_stage(self) -> Stage:
        return self.stages[self.cleaned_data["stage"]]


_PROBLEM_MESSAGES = {
    "lost_needs_reason": gettext_lazy("Say why the lead was lost."),
    "closed": gettext_lazy("The lead is closed; reopen it first."),
    "no_change": gettext_lazy("The lead is already in this stage with this status."),
    "wrong_pipeline": gettext_lazy("That stage is not in this lead's pipeline."),
    "bad_status": gettext_lazy("Choose a valid status."),
    "too_long": gettext_lazy("The reason can be at most 200 characters."),
    "backward_needs_reason": gettext_lazy("Say why the lead moves back to an earlier stage."),
}


def _problem_text(problem: dict[str, str], stages: list[Stage]) -> str:
    """The service explains refusals in English for the API; pages say it in the user's language.
    A problem we have no words for (a future entry requirement) keeps the service's message."""
    code = problem.get("code", "")
    if code in ("missing_field", "missing_attachment"):
        english = _language().startswith("en")
        stage = next((s for s in stages if s.code == problem.get("stage")), None)
        values = {
            "stage": _stage_label(stage) if stage else problem.get("stage", ""),
            "item": problem.get("label_en" if english else "label_zh") or problem.get("field", ""),
        }
        if code == "missing_field":
            return _("Entering %(stage)s needs %(item)s (a field).") % values
        return _("Entering %(stage)s needs %(item)s (an attachment).") % values
    if code == "won_needs_last_stage" and stages:
        return _("A lead is won by entering the last stage, %(stage)s.") % {"stage": _stage_label(stages[-1])}
    if code in _PROBLEM_MESSAGES:
        return str(_PROBLEM_MESSAGES[code])
    return problem.get("message", code)


@dataclass(frozen=True)
class NeedRow:
    label: str
    is_attachment: bool
    met: bool
    link: str  # where on the page (or which page) it is filled in


@dataclass(frozen=True)
class NeedsPanel:
    stage_label: str
    ready: bool
    rows: list[NeedRow]


def _need_link(lead: Lead, key: str) -> str:
    if key.startswith("attachment."):
        return "#lead-engagement"  # the engagement panel, where attachments of a kind are added
    if key.startswith(("custom.", "customer.custom.")):
        return "#lead-custom-fields"
    if key == "contact" or key.startswith("contact."):
        return "#contact-title"
    if key.startswith("customer."):
        return "#customer-title"
    return "#lead-facts-title"


def _needs_panel(lead: Lead, stages: list[Stage]) -> NeedsPanel | None:
    """C2.2 on the lead page: what entering the next stage needs, each item ticked or missing."""
    needs = lead_next_stage_needs(lead=lead, stages=stages)
    if needs is None:
        return None
    language = _language()
    rows = [
        NeedRow(
            label=item.label(language),
            is_attachment=item.item["type"] == "attachment",
            met=item.met,
            link=_need_link(lead, item.key),
        )
        for item in needs.items
    ]
    return NeedsPanel(stage_label=_stage_label(needs.stage), ready=needs.ready, rows=rows)


def _lead_progress(
    request: HttpRequest,
    lead: Lead,
    *,
    form: StageMoveForm | None = None,
    problems: list[str] | None = None,
    problem_fields: frozenset[str] = frozenset(),
    moved: bool = False,
) -> dict[str, Any]:
    """What the stage bar, the timeline and the move form show; the move view re-renders them."""
    stages = pipeline_stages(lead.pipeline_id)
    moves = lead_timeline(lead=lead)
    dwell_by_code: dict[str, float] = {}  # a stage code may have rows in several versions
    for stage_id, days in lead_stage_dwell(lead=lead, moves=moves, now=clock.now()).items():
        code = next(m.to_stage.code for m in moves if m.to_stage_id == stage_id)
        dwell_by_code[code] = dwell_by_code.get(code, 0.0) + days
    editable = lead_editable(user=request.user, lead=lead)
    return {
        "lead": lead,
        "stage_steps": _stage_steps(lead, stages, dwell_by_code),
        "stage_gone": lead_stage_placed(lead, stages) is None,
        "next_needs": _needs_panel(lead, stages),
        "timeline": _timeline_entries(moves),
        "editable": editable,
        "move_form": (form or StageMoveForm(lead=lead, stages=stages)) if editable else None,
        "problems": problems or [],
        "problem_fields": problem_fields,
        "moved": moved,
    }


def _lead_facts(request: HttpRequest, lead: Lead) -> dict[str, Any]:
    # contact_card decides masking and writes the access log for an unmasked view.
    card = contact_card(user=request.user, contact=lead.contact, lead=lead, channel="page")
    return {
        "contact": card,
        "phone_display": _phone_display(card.phone) if card and card.unmasked and card.phone else "",
        "amount": _money(lead.expected_amount),
        # C8.2 "为什么分给我": the assignment trace in words, and the reassign form for managers.
        "assignment_panel": lead_assignment_panel(request.user, lead),
    }


@login_required
@require_GET
def lead_detail_page(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = lead_get(user=request.user, lead_id=lead_id)  # Http404 when out of scope
    context = {**_lead_progress(request, lead), **_lead_facts(request, lead)}
    return render(request, "crm/lead_detail.html", context)


@login_required
@require_POST
def lead_move(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = lead_get(user=request.user, lead_id=lead_id)
    if not lead_editable(user=request.user, lead=lead):
        raise PermissionDenied("you may view this lead but not move it")
    stages = pipeline_stages(lead.pipeline_id)
    form = StageMoveForm(request.POST, lead=lead, stages=stages)
    problems: list[str] = []
    problem_fields: set[str] = set()
    if form.is_valid():
        try:
            lead_move_stage(
                actor=request.user,
                lead=lead,
                to_stage=form.cleaned_data["stage"],
                status=form.cleaned_data["status"] or None,
                reason=form.cleaned_data["reason"],
                note=form.cleaned_data["note"],
            )
        except StageMoveRefused as refused:
            for problem in refused.explanation["problems"]:
                problems.append(_problem_text(problem, stages))
                problem_fields.add(
                    "stage" if problem.get("field") == "to_stage" else problem.get("field", "")
                )
    else:
        problem_fields = set(form.errors)
        problems = _form_problems(form)

    if problems:
        context = _lead_progress(
            request, lead, form=form, problems=problems, problem_fields=frozenset(problem_fields)
        )
        if _wants_fragment(request, "move-form"):
            return render(request, "crm/_move_form.html", context, status=422)
        return render(request, "crm/lead_detail.html", {**context, **_lead_facts(request, lead)}, status=422)

    lead = lead_get(user=request.user, lead_id=lead_id)  # the service saved a fresh copy
    if _wants_fragment(request, "move-form"):
        return render(request, "crm/_lead_moved.html", _lead_progress(request, lead, moved=True))
    messages.success(
        request,
        _("Saved: the lead is at %(stage)s, %(status)s.")
        % {"stage": _stage_label(lead.stage), "status": lead.get_status_display()},
    )
    return redirect("lead-detail", lead_id=lead.pk)
