"""Check-in pages (SPEC C4): the phone-first check-in form, a rep's daily report, a manager's team
day and the evidence files behind the thumbnails. The form works without JavaScript (one multipart
post); with it, `checkin.js` uploads each photo as soon as it is taken, in resumable chunks, keeps
what was typed in the browser and submits through the API with an idempotency key."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from salesloop.core import clock
from salesloop.core.roles import Role
from salesloop.crm.models import Lead, LeadStatus
from salesloop.crm.selectors import lead_get, lead_personal_data_visible, leads_visible_to
from salesloop.engagement import checkin_selectors as selectors
from salesloop.engagement import checkin_services as services
from salesloop.engagement.checkin_models import CheckinResult, EvidenceKind
from salesloop.engagement.ocr.selectors import evidence_masked
from salesloop.engagement.responses import attachment_file_response
from salesloop.pipeline.services import StageMoveRefused

LEAD_CHOICES = 100  # the rep's most recent open leads offered when the page is opened from the nav
EVIDENCE_INPUTS = [
    # (kind, input name, what the camera input accepts)
    (EvidenceKind.SITE_PHOTO, "evidence_site_photo", "image/*"),
    (EvidenceKind.MEETING_MINUTES, "evidence_meeting_minutes", "image/*,application/pdf"),
    (EvidenceKind.SIGNATURE_PAGE, "evidence_signature_page", "image/*,application/pdf"),
]


class CheckinForm(forms.Form):
    client_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    lead = forms.IntegerField(label=gettext_lazy("Lead"), min_value=1)
    action_type = forms.CharField(label=gettext_lazy("Action"), max_length=40)
    result_type = forms.ChoiceField(label=gettext_lazy("Result"), choices=CheckinResult.choices)
    result_text = forms.CharField(
        label=gettext_lazy("What happened"), max_length=2000, widget=forms.Textarea(attrs={"rows": 4})
    )
    location_text = forms.CharField(label=gettext_lazy("Where"), max_length=200, required=False)
    latitude = forms.DecimalField(required=False, max_digits=9, decimal_places=6, widget=forms.HiddenInput)
    longitude = forms.DecimalField(required=False, max_digits=9, decimal_places=6, widget=forms.HiddenInput)
    to_stage = forms.CharField(label=gettext_lazy("Move the lead to"), max_length=40, required=False)
    move_reason = forms.CharField(label=gettext_lazy("Reason for the move"), max_length=200, required=False)
    evidence = forms.CharField(required=False, widget=forms.HiddenInput)  # upload ids from checkin.js


def _errors_onto(form: CheckinForm, exc: ValidationError) -> None:
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _lead_choices(request: HttpRequest) -> list[Lead]:
    leads = leads_visible_to(request.user).filter(status=LeadStatus.OPEN, merged_into__isnull=True)
    if request.user.role == Role.REP:  # type: ignore[union-attr]
        leads = leads.filter(owner_id=request.user.pk)
    return list(leads.select_related("customer", "stage").order_by("-id")[:LEAD_CHOICES])


def _form_page(
    request: HttpRequest,
    form: CheckinForm,
    lead: Lead | None,
    *,
    refused: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    from salesloop.pipeline.selectors import pipeline_stages

    stages = list(pipeline_stages(lead.pipeline_id)) if lead is not None else []
    context = {
        "form": form,
        "lead": lead,
        "leads": [] if lead is not None else _lead_choices(request),
        "action_types": selectors.action_types(),
        "results": CheckinResult.choices,
        "stages": stages,
        "evidence_inputs": [(kind.value, kind.label, name, accept) for kind, name, accept in EVIDENCE_INPUTS],
        "refused": refused,
        "chunk_bytes": 256 * 1024,
    }
    return render(request, "engagement/checkin_form.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def checkin_new(request: HttpRequest) -> HttpResponse:
    """C4.1 / issue 6.2: the check-in page. GET ?lead=ID starts on that lead (404 out of scope)."""
    if request.method == "POST":
        return _checkin_post(request)
    lead = None
    lead_param = request.GET.get("lead", "")
    if lead_param:
        if not lead_param.isdigit() or not 0 < int(lead_param) < 2**63:
            lead_param = "0"
        lead = lead_get(user=request.user, lead_id=int(lead_param))
    form = CheckinForm(initial={"client_key": uuid.uuid4().hex, "lead": lead.pk if lead else ""})
    return _form_page(request, form, lead)


def _checkin_post(request: HttpRequest) -> HttpResponse:
    """Without JavaScript: the fields and the files in one post. Refused → the form again, 422, with
    the errors on their fields and everything typed kept (the files must be chosen again)."""
    form = CheckinForm(request.POST)
    lead = None
    lead_param = str(request.POST.get("lead", ""))
    if lead_param.isdigit() and 0 < int(lead_param) < 2**63:
        lead = lead_get(user=request.user, lead_id=int(lead_param))
    if not form.is_valid():
        return _form_page(request, form, lead, status=422)
    data = form.cleaned_data
    if lead is None:  # an id no database can hold
        form.add_error("lead", _("Choose a lead"))
        return _form_page(request, form, lead, status=422)
    refused = None
    try:
        upload_ids = [uuid.UUID(u) for u in (data["evidence"] or "").split(",") if u.strip()]
    except ValueError:
        form.add_error(None, _("The uploaded evidence could not be read; choose the files again."))
        return _form_page(request, form, lead, status=422)
    try:
        for kind, name, _accept in EVIDENCE_INPUTS:
            for file in request.FILES.getlist(name):
                upload = services.evidence_upload_whole(actor=request.user, kind=kind.value, file=file)
                upload_ids.append(upload.pk)
        checkin, _created = services.checkin_record(
            actor=request.user,
            lead=lead,
            action_type=data["action_type"],
            result_type=data["result_type"],
            result_text=data["result_text"],
            client_key=data["client_key"],
            latitude=data["latitude"],
            longitude=data["longitude"],
            location_text=data["location_text"],
            upload_ids=upload_ids,
            to_stage=data["to_stage"] or None,
            move_reason=data["move_reason"],
        )
    except ValidationError as exc:
        _errors_onto(form, exc)
        return _form_page(request, form, lead, status=422)
    except StageMoveRefused as exc:
        refused = exc.explanation
        form.add_error(
            "to_stage",
            _("The lead cannot move yet: nothing was saved. Fix what is missing or clear the move."),
        )
        return _form_page(request, form, lead, refused=refused, status=422)
    except PermissionDenied:
        form.add_error("lead", _("You may not check in on this lead."))
        return _form_page(request, form, lead, status=422)
    messages.success(request, _("Checked in."))
    return redirect(f"{reverse('checkin-day')}?date={checkin.day.isoformat()}")


def _day_param(request: HttpRequest) -> dt.date:
    text = request.GET.get("date", "")
    try:
        return dt.date.fromisoformat(text) if text else clock.today_local()
    except ValueError:
        return clock.today_local()


@login_required
@require_GET
def checkin_day(request: HttpRequest) -> HttpResponse:
    """C4.1: a rep's daily report — theirs, or (for a manager) a rep's in scope: ?rep=ID&date=."""
    day = _day_param(request)
    rep_param = request.GET.get("rep", "")
    rep_id = int(rep_param) if rep_param.isdigit() and 0 < int(rep_param) < 2**63 else request.user.pk
    rep = selectors.rep_get(user=request.user, rep_id=rep_id)
    checkins = selectors.checkins_of_day(user=request.user, rep=rep, day=day)
    for checkin in checkins:  # what OCR read beside each piece of evidence, masked for the viewer
        unmasked = lead_personal_data_visible(user=request.user, lead=checkin.lead)
        for item in checkin.evidence.all():
            ocr = getattr(item.attachment, "ocr", None)
            item.ocr_shown = evidence_masked(ocr, unmasked=unmasked) if ocr else None  # type: ignore[attr-defined]
    context = {
        "rep": rep,
        "own": rep.pk == request.user.pk,
        "day": day,
        "previous": day - dt.timedelta(days=1),
        "next": day + dt.timedelta(days=1) if day < clock.today_local() else None,
        "checkins": checkins,
        "counted": [c for c in checkins if c.withdrawn_at is None],
    }
    return render(request, "engagement/checkin_day.html", context)


@login_required
@require_GET
def checkin_team(request: HttpRequest) -> HttpResponse:
    """C4.3: the manager's day: who checked in, actions and results by type, leads that moved, reps
    with none; each rep drills down to their report with the evidence."""
    if request.user.role == Role.REP and not request.user.is_superuser:  # type: ignore[union-attr]
        raise PermissionDenied("managers, directors and administrators only")
    day = _day_param(request)
    team_param = request.GET.get("team", "")
    team_id = int(team_param) if team_param.isdigit() and 0 < int(team_param) < 2**63 else None
    summary = selectors.team_day(user=request.user, day=day, team_id=team_id)
    action_counts = summary.action_counts()
    result_counts = summary.result_counts()
    labels = {kind.code: kind.label for kind in summary.action_types}
    result_labels = dict(CheckinResult.choices)
    for row in summary.reps:  # labelled here: a Counter answers 0 to the template's `.items` lookup
        row.actions_shown = [(labels.get(code, code), n) for code, n in row.by_action.items()]  # type: ignore[attr-defined]
        row.results_shown = [(result_labels.get(v, v), n) for v, n in row.by_result.items()]  # type: ignore[attr-defined]
    widest = max([n for _k, n in action_counts] + [n for _v, _l, n in result_counts] + [1])
    context = {
        "summary": summary,
        "day": day,
        "previous": day - dt.timedelta(days=1),
        "next": day + dt.timedelta(days=1) if day < clock.today_local() else None,
        "teams": list(selectors.teams_visible_to(request.user)),
        "action_bars": [(kind.label, n, round(100 * n / widest)) for kind, n in action_counts],
        "result_bars": [(value, label, n, round(100 * n / widest)) for value, label, n in result_counts],
    }
    return render(request, "engagement/checkin_team.html", context)


@login_required
@require_GET
def checkin_evidence_file(request: HttpRequest, evidence_id: int) -> FileResponse:
    """The evidence file shown inline (thumbnails, a tap opens it), 404 outside the check-in's scope."""
    evidence = selectors.evidence_get(user=request.user, evidence_id=evidence_id)
    return attachment_file_response(evidence.attachment, inline=True)


@login_required
@require_http_methods(["POST"])
def checkin_withdraw_page(request: HttpRequest, checkin_id: int) -> HttpResponse:
    """Withdraw a check-in made by mistake (with a reason) from the daily report; 404 out of scope."""
    checkin = selectors.checkin_get(user=request.user, checkin_id=checkin_id)
    back = f"{reverse('checkin-day')}?date={checkin.day.isoformat()}"
    if checkin.actor_id != request.user.pk:
        back += f"&rep={checkin.actor_id}"
    try:
        services.checkin_withdraw(
            actor=request.user, checkin=checkin, reason=str(request.POST.get("reason", ""))
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except PermissionDenied:
        messages.error(request, _("You may not withdraw this check-in."))
    else:
        messages.success(request, _("The check-in was withdrawn."))
    return redirect(f"{back}#checkin-{checkin.pk}")
