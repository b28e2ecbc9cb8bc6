"""The lead page's engagement panel (SPEC C3.4): attachments and share links, touches, meetings and
budget, with a form for each. Loaded lazily by htmx; every form posts here and gets the refreshed
panel back (422 with the errors by field and the values kept when the service refuses)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from salesloop.crm.models import Lead
from salesloop.crm.selectors import lead_editable, lead_get, lead_personal_data_visible
from salesloop.engagement import selectors, services
from salesloop.engagement.forms import (
    COMMON_KINDS,
    AttachmentForm,
    BudgetForm,
    MeetingForm,
    MeetingOutcomeForm,
    TouchForm,
)
from salesloop.engagement.models import BudgetStage, MeetingStatus
from salesloop.engagement.ocr.selectors import evidence_masked
from salesloop.engagement.responses import attachment_file_response, share_url


class _OnLead(Protocol):
    """An attachment, document, touch or meeting: a fact hanging on one lead."""

    lead_id: int


# service field → form field, where they differ
FIELD_ALIASES = {"contact_id": "contact", "attachment": "file"}


def _wants_fragment(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def _errors_onto(form: Any, exc: ValidationError) -> None:
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, messages in exc.message_dict.items():
        name = FIELD_ALIASES.get(field, field)
        form.add_error(name if name in form.fields else None, messages)


def _kind_choices(lead: Lead) -> list[tuple[str, str]]:
    """The kinds offered on the attachment form: first those the lead's pipeline requires to enter
    a stage (with the pipeline's own labels, so the rep attaches exactly what a gate asks for), then
    the common ones. Any other slug may be typed in."""
    from salesloop.pipeline.selectors import pipeline_stages

    english = (get_language() or "").startswith("en")
    kinds: dict[str, str] = {}
    for stage in pipeline_stages(lead.pipeline_id) if lead.pipeline_id else []:
        for item in stage.requirements or []:
            if isinstance(item, dict) and item.get("type") == "attachment" and item.get("kind"):
                label = item.get("label_en" if english else "label_zh") or item["kind"]
                kinds.setdefault(str(item["kind"]), str(label))
    for kind, label in COMMON_KINDS:
        kinds.setdefault(kind, str(label))
    return list(kinds.items())


def _panel(
    request: HttpRequest,
    lead: Lead,
    *,
    bound: dict[str, Any] | None = None,
    notice: str = "",
    status: int = 200,
) -> HttpResponse:
    engagement = selectors.lead_engagement(lead=lead)
    editable = lead_editable(user=request.user, lead=lead)
    bound = bound or {}
    forms: dict[str, Any] = {}
    if editable:
        forms = {
            "attachment_form": bound.get("attachment_form") or AttachmentForm(),
            "touch_form": bound.get("touch_form") or TouchForm(contacts=engagement.contacts),
            "meeting_form": bound.get("meeting_form") or MeetingForm(),
            "budget_form": bound.get("budget_form") or BudgetForm(),
        }
        for meeting in engagement.meetings:
            meeting.outcome_form = bound.get(_outcome_slot(meeting.pk)) or MeetingOutcomeForm(  # type: ignore[attr-defined]
                initial={
                    "status": meeting.status,
                    "attended_minutes": meeting.attended_minutes,
                    "minutes_text": meeting.minutes_text,
                },
                prefix=_outcome_slot(meeting.pk),
            )
    kinds = _kind_choices(lead)
    labels = dict(kinds)
    unmasked = lead_personal_data_visible(user=request.user, lead=lead)
    for row in engagement.attachments:
        if row.ocr is not None:  # phone numbers read off a page are personal data
            row.ocr = evidence_masked(row.ocr, unmasked=unmasked)
        row.kind_label = labels.get(row.attachment.kind, row.attachment.kind)  # type: ignore[attr-defined]
        if row.tracked and row.tracked.document.revoked_at is None:
            row.share_url = share_url(row.tracked.document.token)  # type: ignore[attr-defined]
    context = {
        "lead": lead,
        "engagement": engagement,
        "editable": editable,
        "common_kinds": kinds,
        "notice": notice,
        "notice_error": status >= 400,
        "budget_steps": [
            {"n": n, "label": label} for n, (_value, label) in enumerate(BudgetStage.choices, 1)
        ],
        "attended": MeetingStatus.ATTENDED,
        **forms,
    }
    template = "engagement/_panel.html" if _wants_fragment(request) else "engagement/panel_page.html"
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _done(request: HttpRequest, lead: Lead, notice: str) -> HttpResponse:
    if not _wants_fragment(request):  # without JavaScript: back to the lead page
        return redirect("lead-detail", lead_id=lead.pk)
    return _panel(request, lead, notice=notice)


def _outcome_slot(meeting_pk: int) -> str:
    """Where a meeting's outcome form waits in `bound`: one per meeting, so its own prefix."""
    return f"m{meeting_pk}"


def _of_lead(fact: _OnLead, *, lead_id: int, name: str) -> None:
    """A fact reached through a lead's URL must hang on that lead: otherwise a form on one lead's
    page could act on another lead's record. 404, the answer for anything out of reach."""
    if fact.lead_id != lead_id:
        raise Http404(f"{name} not found")


def _form_submit(
    request: HttpRequest,
    lead: Lead,
    form: Any,
    *,
    slot: str,
    record: Callable[[dict[str, Any]], object],
    done: str,
) -> HttpResponse:
    """A panel form posted: `record` hands the cleaned data to the service and the panel comes back
    with `done`. A form the fields refuse, or a service refusal, gives the panel again with 422, the
    errors on their fields and the values kept (`slot`: where the panel shows this form)."""
    if form.is_valid():
        try:
            record(form.cleaned_data)
        except ValidationError as exc:
            _errors_onto(form, exc)
        else:
            return _done(request, lead, done)
    return _panel(request, lead, bound={slot: form}, status=422)


def _act(request: HttpRequest, lead: Lead, action: Callable[[], object], *, done: str) -> HttpResponse:
    """A button on a fact of the panel whose service may refuse: the refusal comes back as the
    panel's notice with 422 (a button has no field to put it on)."""
    try:
        action()
    except ValidationError as exc:
        return _panel(request, lead, notice=" ".join(exc.messages), status=422)
    return _done(request, lead, done)


@login_required
@require_GET
def engagement_panel(request: HttpRequest, lead_id: int) -> HttpResponse:
    """The panel (a fragment for htmx, a page of its own otherwise); 404 out of scope."""
    return _panel(request, lead_get(user=request.user, lead_id=lead_id))


@login_required
@require_POST
def attachment_add_page(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = lead_get(user=request.user, lead_id=lead_id)
    form = AttachmentForm(request.POST, request.FILES)

    def record(data: dict[str, Any]) -> object:
        return services.attachment_add(
            actor=request.user,
            lead=lead,
            kind=data["kind"],
            title=data["title"],
            file=data["file"] or None,
            url=data["url"],
        )

    return _form_submit(request, lead, form, slot="attachment_form", record=record, done=_("Attached."))


@login_required
@require_POST
def attachment_remove_page(request: HttpRequest, lead_id: int, attachment_id: int) -> HttpResponse:
    lead = lead_get(user=request.user, lead_id=lead_id)
    attachment = selectors.attachment_get(user=request.user, attachment_id=attachment_id)
    _of_lead(attachment, lead_id=lead.pk, name="attachment")
    services.attachment_remove(
        actor=request.user, attachment=attachment, reason=request.POST.get("reason", "")[:2000]
    )
    return _done(request, lead, _("Withdrawn: it no longer counts and its share link is closed."))


@login_required
@require_GET
def attachment_file_page(request: HttpRequest, lead_id: int, attachment_id: int) -> FileResponse:
    """Download for anyone who may see the lead (404 for everyone else)."""
    attachment = selectors.attachment_get(user=request.user, attachment_id=attachment_id)
    _of_lead(attachment, lead_id=lead_id, name="attachment")
    return attachment_file_response(attachment, inline=False)


@login_required
@require_POST
def document_share_page(request: HttpRequest, lead_id: int, attachment_id: int) -> HttpResponse:
    lead = lead_get(user=request.user, lead_id=lead_id)
    attachment = selectors.attachment_get(user=request.user, attachment_id=attachment_id)
    _of_lead(attachment, lead_id=lead.pk, name="attachment")
    return _act(
        request,
        lead,
        lambda: services.document_share(actor=request.user, attachment=attachment),
        done=_("Share link ready: send it to the customer."),
    )


@login_required
@require_POST
def document_revoke_page(request: HttpRequest, lead_id: int, document_id: int) -> HttpResponse:
    lead = lead_get(user=request.user, lead_id=lead_id)
    document = selectors.document_get(user=request.user, document_id=document_id)
    _of_lead(document, lead_id=lead.pk, name="document")
    services.document_revoke(actor=request.user, document=document)
    return _done(request, lead, _("Share link revoked: it no longer opens."))


@login_required
@require_POST
def touch_add_page(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = lead_get(user=request.user, lead_id=lead_id)
    contacts = selectors.lead_engagement(lead=lead).contacts
    form = TouchForm(request.POST, contacts=contacts)

    def record(data: dict[str, Any]) -> object:
        contact = next((c for c in contacts if c.pk == data["contact"]), None) if data["contact"] else None
        return services.touch_record(
            actor=request.user,
            lead=lead,
            kind=data["kind"],
            direction=data["direction"],
            responded=form.responded_value(),
            customer_initiated=data["customer_initiated"],
            at=data["at"],
            note=data["note"],
            contact=contact,
        )

    return _form_submit(request, lead, form, slot="touch_form", record=record, done=_("Touch recorded."))


@login_required
@require_POST
def touch_responded_page(request: HttpRequest, lead_id: int, touch_id: int) -> HttpResponse:
    lead = lead_get(user=request.user, lead_id=lead_id)
    touch = selectors.touch_get(user=request.user, touch_id=touch_id)
    _of_lead(touch, lead_id=lead.pk, name="touch")
    answer = request.POST.get("responded")
    if answer not in ("yes", "no"):
        return _panel(request, lead, notice=_("Choose whether the customer responded."), status=422)
    return _act(
        request,
        lead,
        lambda: services.touch_response_record(actor=request.user, touch=touch, responded=answer == "yes"),
        done=_("Response recorded."),
    )


@login_required
@require_POST
def meeting_add_page(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = lead_get(user=request.user, lead_id=lead_id)
    return _form_submit(
        request,
        lead,
        MeetingForm(request.POST),
        slot="meeting_form",
        record=lambda data: services.meeting_schedule(actor=request.user, lead=lead, **data),
        done=_("Meeting scheduled."),
    )


@login_required
@require_POST
def meeting_outcome_page(request: HttpRequest, lead_id: int, meeting_id: int) -> HttpResponse:
    lead = lead_get(user=request.user, lead_id=lead_id)
    meeting = selectors.meeting_get(user=request.user, meeting_id=meeting_id)
    _of_lead(meeting, lead_id=lead.pk, name="meeting")
    return _form_submit(
        request,
        lead,
        MeetingOutcomeForm(request.POST, prefix=_outcome_slot(meeting.pk)),
        slot=_outcome_slot(meeting.pk),
        record=lambda data: services.meeting_update(actor=request.user, meeting=meeting, **data),
        done=_("Meeting updated."),
    )


@login_required
@require_POST
def budget_add_page(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = lead_get(user=request.user, lead_id=lead_id)
    return _form_submit(
        request,
        lead,
        BudgetForm(request.POST),
        slot="budget_form",
        record=lambda data: services.budget_milestone_record(actor=request.user, lead=lead, **data),
        done=_("Budget milestone recorded."),
    )
