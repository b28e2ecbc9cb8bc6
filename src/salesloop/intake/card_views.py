"""Card pages 展会名片 (SPEC C1.1): a rep photographs a card at the stand, checks what OCR read
beside the photo, corrects it and confirms — on a phone.

Views are thin (STYLE.md 2): the same services and reads as `card_api`, shaped for templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from salesloop.core.audit import personal_data_access_record
from salesloop.crm.selectors import CursorError, leads_visible_to
from salesloop.intake import cards
from salesloop.intake.card_api import card_fields
from salesloop.intake.hooks import client_ip
from salesloop.intake.models import EventStatus, InboundEvent, Source

TABS = (
    (EventStatus.DRAFT, gettext_lazy("To confirm")),
    (EventStatus.FAILED, gettext_lazy("Not readable")),
    (EventStatus.IGNORED, gettext_lazy("Confirmed")),
)
FIELD_NAMES = ("name", "title", "company", "phone", "email", "address")


class CardUploadForm(forms.Form):
    photo = forms.FileField(label=gettext_lazy("Card photo"))
    source = forms.ModelChoiceField(
        queryset=Source.objects.none(), required=False, label=gettext_lazy("Trade show")
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["source"].queryset = cards.card_sources()  # type: ignore[attr-defined]


class CardConfirmForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Full name"), max_length=80)
    title = forms.CharField(label=gettext_lazy("Job title"), max_length=80, required=False)
    company = forms.CharField(label=gettext_lazy("Company"), max_length=200, required=False)
    phone = forms.CharField(label=gettext_lazy("Phone"), max_length=40, required=False)
    email = forms.CharField(label=gettext_lazy("E-mail"), max_length=254, required=False)
    address = forms.CharField(label=gettext_lazy("Address"), max_length=200, required=False)


@dataclass(frozen=True)
class CardRow:
    event: InboundEvent
    fields: dict[str, str]
    pending: bool
    label: str


def _status_label(event: InboundEvent) -> str:
    if cards.card_ocr_pending(event):
        return _("Reading…")
    return str(dict(TABS).get(event.status, event.get_status_display()))


def _list_context(request: HttpRequest, form: CardUploadForm | None = None) -> dict[str, Any]:
    status = request.GET.get("status") or EventStatus.DRAFT
    if status not in {value for value, _label in TABS}:
        status = EventStatus.DRAFT
    try:
        page = cards.card_list(
            user=request.user,
            status=status,
            cursor=request.GET.get("cursor") or None,
            limit=settings.SALESLOOP_PAGE_SIZE,
        )
    except CursorError:
        page = cards.card_list(
            user=request.user, status=status, cursor=None, limit=settings.SALESLOOP_PAGE_SIZE
        )
    rows = [
        CardRow(event=e, fields=card_fields(e), pending=cards.card_ocr_pending(e), label=_status_label(e))
        for e in page.items
    ]
    form = form or CardUploadForm()
    return {
        "rows": rows,
        "tabs": TABS,
        "status": status,
        "next_cursor": page.next_cursor,
        "form": form,
        "choose_source": len(form.fields["source"].queryset) > 1,  # type: ignore[attr-defined]
        "max_mb": cards.CARD_MAX_BYTES // (1024 * 1024),
    }


@login_required
@require_GET
def card_list_page(request: HttpRequest) -> HttpResponse:
    return render(request, "intake/cards/list.html", _list_context(request))


@login_required
@require_POST
def card_upload_page(request: HttpRequest) -> HttpResponse:
    form = CardUploadForm(request.POST, request.FILES)
    status = 422
    if form.is_valid():
        photo = form.cleaned_data["photo"]
        source = form.cleaned_data["source"] or cards.card_source_default()
        try:
            if photo.size > cards.CARD_MAX_BYTES:
                raise cards.CardTooLarge(f"larger than {cards.CARD_MAX_BYTES // (1024 * 1024)} MB")
            event = cards.card_upload(
                actor=request.user,
                source=source,
                image_bytes=photo.read(),
                content_type=photo.content_type or "",
                headers={k: v for k, v in request.headers.items() if k == "User-Agent"},
                remote_addr=client_ip(request),
            )
        except cards.CardImageRefused as exc:
            form.add_error("photo", _refusal_text(exc))
            status = exc.status
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            if not cards.cards_visible_to(request.user).filter(pk=event.pk).exists():
                # The same photo was uploaded before by a colleague: it is their card, not a new one.
                messages.info(request, _("A colleague has already uploaded this card."))
                return redirect("card-list")
            return redirect("card-detail", event_id=event.pk)
    return render(request, "intake/cards/list.html", _list_context(request, form), status=status)


def _refusal_text(exc: cards.CardImageRefused) -> str:
    """The service's reason, in words for the person holding the phone."""
    if isinstance(exc, cards.CardTypeRefused):
        return _("Send a photo as JPEG, PNG or WebP.")
    if isinstance(exc, cards.CardTooLarge):
        return _("The photo is larger than %(mb)s MB.") % {"mb": cards.CARD_MAX_BYTES // (1024 * 1024)}
    return _("This file is not a readable photo.")


def _detail_context(
    request: HttpRequest, event: InboundEvent, form: CardConfirmForm | None = None
) -> dict[str, Any]:
    normalised = event.normalised or {}
    fields = card_fields(event)
    confirmed = "confirmed_event_id" in normalised
    why = normalised.get("why") or {}
    form = form or CardConfirmForm(initial=fields)
    lead_visible = bool(event.lead_id) and leads_visible_to(request.user).filter(pk=event.lead_id).exists()
    return {
        "event": event,
        "pending": cards.card_ocr_pending(event),
        "confirmed": confirmed,
        "confirmable": not confirmed and event.status in {EventStatus.DRAFT, EventStatus.FAILED},
        "lead_visible": lead_visible,
        "form": form,
        "form_rows": [(form[name], why.get(name, "")) for name in FIELD_NAMES],
        "fields": fields,
        "status_label": _status_label(event),
        "ocr_lines": normalised.get("ocr_lines") or [],
        "phones": normalised.get("phones") or [],
        "ocr": normalised.get("ocr") or {},
    }


def _access_record(request: HttpRequest, event: InboundEvent, fields: list[str]) -> None:
    if event.created_by_id != request.user.pk:
        personal_data_access_record(actor=request.user, subject=event, fields=fields, channel="page")


@login_required
@require_GET
def card_detail_page(request: HttpRequest, event_id: int) -> HttpResponse:
    event = cards.card_get(user=request.user, event_id=event_id)  # Http404 when out of scope
    polled = request.GET.get("polled") == "1"  # htmx asking every 3 s whether OCR has finished
    if not polled:
        _access_record(request, event, ["ocr_lines", "fields"])
    context = _detail_context(request, event)
    context["just_read"] = polled and not context["pending"]
    return render(request, "intake/cards/detail.html", context)


@login_required
@require_POST
def card_confirm_page(request: HttpRequest, event_id: int) -> HttpResponse:
    event = cards.card_get(user=request.user, event_id=event_id)
    form = CardConfirmForm(request.POST)
    if form.is_valid():
        try:
            event = cards.card_confirm(actor=request.user, event=event, **form.cleaned_data)
        except ValidationError as exc:
            for field_name, problems in _problems(exc).items():
                form.add_error(field_name if field_name in form.fields else None, problems)
        else:
            if leads_visible_to(request.user).filter(pk=event.lead_id).exists():
                messages.success(
                    request, _("Confirmed: the card is lead #%(lead)s.") % {"lead": event.lead_id}
                )
                return redirect("lead-detail", lead_id=event.lead_id)
            messages.success(
                request,
                _("Confirmed: lead #%(lead)s waits in the region's pool for a manager to assign.")
                % {"lead": event.lead_id},
            )
            return redirect("card-detail", event_id=event.pk)
    return render(request, "intake/cards/detail.html", _detail_context(request, event, form), status=422)


def _problems(exc: ValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {key: [m for e in errors for m in e.messages] for key, errors in exc.error_dict.items()}
    return {"__all__": list(exc.messages)}


@login_required
@require_POST
def card_retry_page(request: HttpRequest, event_id: int) -> HttpResponse:
    event = cards.card_get(user=request.user, event_id=event_id)
    try:
        cards.card_ocr_retry(actor=request.user, event=event)
    except ValidationError as exc:
        messages.error(request, " ".join(m for ms in _problems(exc).values() for m in ms))
    return redirect("card-detail", event_id=event.pk)


@login_required
@require_GET
def card_image_page(request: HttpRequest, event_id: int) -> FileResponse:
    event = cards.card_get(user=request.user, event_id=event_id)
    _access_record(request, event, ["photo"])
    return cards.card_image_response(event)
