"""Intake pages (SPEC C1): counts and duplicate rates per channel, channel settings, the dead-letter
list with retry, merge suggestions, a lead's merge state and its arrivals (C1.7).

Views are thin (STYLE.md 2): parse, check the role, call the selector or service the REST API
(`intake.api`) calls — so page and API cannot disagree — and shape the result for the template.
Scope comes from the selectors (out of scope → 404); a role that may look but not act gets no
button, and a hand-made POST gets the service's PermissionDenied (403).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import prefetch_related_objects
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from salesloop.core import clock
from salesloop.core.audit import personal_data_access_record
from salesloop.core.roles import Role, is_admin, mask_phone
from salesloop.crm.models import Lead
from salesloop.crm.selectors import CursorError, lead_get
from salesloop.intake import merge_services, selectors, services
from salesloop.intake.channels import ARRIVAL_FIELDS, DEFAULT_MAPPINGS
from salesloop.intake.models import EventStatus, InboundEvent, MergeSuggestion, Source, SourceKind
from salesloop.pipeline.models import Pipeline

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30
ALARM_RATE = 0.5  # the source's incident: 82% of one campaign's leads were people already known
RECENT_EVENTS = 5
SIGNED_KINDS = frozenset({SourceKind.DOUYIN, SourceKind.CALL_400, SourceKind.API, SourceKind.CARD})
MAPPING_PREFIX = "map."
MAPPING_OFF = "-"  # typed in a mapping row: do not read this field at all
SECRET_ONCE_KEY = "intake.secret_once"  # noqa: S105 -- the name of a session key, not a secret


# --- who may do what ------------------------------------------------------------------------


def _require_intake_viewer(user: Any) -> None:
    """Channels, dead letters and merges are run by managers, directors, product managers and
    admins. A rep works leads, not channels: their view of intake is a lead's arrivals."""
    if user.role == Role.REP and not user.is_superuser:
        raise PermissionDenied("intake pages are for managers, directors, product managers and admins")


def _retry_allowed(user: Any) -> bool:
    """Mirrors `services.event_retry`, so nobody sees a button that would answer 403."""
    return is_admin(user) or user.role == Role.DIRECTOR


def _wants_fragment(request: HttpRequest, target: str | None = None) -> bool:
    """An htmx request (aimed at `target`, when given) gets only the fragment. A history restore
    asks for the whole page, so it must not get the fragment."""
    htmx = getattr(request, "htmx", None)
    if not htmx or htmx.history_restore_request:
        return False
    return target is None or htmx.target == target


def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    response = render(request, template, context, status=status)
    # The same URL answers with a fragment or a page: caches must keep them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response


def _language() -> str:
    return translation.get_language() or settings.LANGUAGE_CODE


def _pretty_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=False)


# --- dashboard ------------------------------------------------------------------------------


class PeriodForm(forms.Form):
    days = forms.TypedChoiceField(
        label=gettext_lazy("Period"),
        choices=[(days, days) for days in PERIODS],
        coerce=int,
        required=False,
        empty_value=DEFAULT_PERIOD,
    )


@dataclass(frozen=True)
class DuplicateBar:
    """One source + campaign as a bar: its width is the duplicate rate, red above ALARM_RATE."""

    source_id: int
    source_name: str
    campaign: str
    received: int
    created: int
    touches: int
    failed: int
    percent: str  # "82%", for people
    width: str  # "82.0%", for CSS: never localised
    alarm: bool


def _duplicate_bars(rows: list[selectors.DuplicateRow]) -> list[DuplicateBar]:
    return [
        DuplicateBar(
            source_id=row.source_id,
            source_name=row.source_name,
            campaign=row.campaign,
            received=row.received,
            created=row.created,
            touches=row.touches,
            failed=row.failed,
            percent=f"{row.duplicate_rate * 100:.0f}%",
            width=f"{row.duplicate_rate * 100:.1f}%",
            alarm=row.duplicate_rate > ALARM_RATE,
        )
        for row in rows
    ]


def _counts_total(rows: list[selectors.SourceCounts], window: str) -> dict[str, int]:
    total: dict[str, int] = {}
    for row in rows:
        for name, value in getattr(row, window).items():
            total[name] = total.get(name, 0) + value
    return total


@login_required
@require_GET
def dashboard_page(request: HttpRequest) -> HttpResponse:
    """C1.7 counts per channel (today, 30 days) and C1.4 duplicate rate per channel and campaign."""
    _require_intake_viewer(request.user)
    form = PeriodForm(request.GET)
    problems: list[str] = []
    days = DEFAULT_PERIOD
    if form.is_valid():
        days = form.cleaned_data["days"]
    else:
        problems.append(_("Choose a period of 7, 30 or 90 days."))
    until = clock.now()
    bars = _duplicate_bars(
        selectors.duplicate_report(user=request.user, since=until - dt.timedelta(days=days), until=until)
    )
    context: dict[str, Any] = {
        "days": days,
        "periods": PERIODS,
        "bars": bars,
        "alarm_rate": f"{ALARM_RATE * 100:.0f}%",
        "problems": problems,
        "section": "overview",
    }
    status = 400 if problems else 200
    if _wants_fragment(request, "duplicate-report"):
        return _render(request, "intake/pages/_duplicate_report.html", context, status)
    counts = selectors.source_counts(user=request.user)
    context |= {
        "counts": counts,
        "total_today": _counts_total(counts, "today"),
        "total_days30": _counts_total(counts, "days30"),
        "is_admin": is_admin(request.user),
    }
    return _render(request, "intake/pages/dashboard.html", context, status)


# --- sources --------------------------------------------------------------------------------


def _hook_url(source: Source) -> str:
    return f"{settings.SITE_URL}/hooks/{source.slug}"


def _form_url(source: Source) -> str:
    return f"{settings.SITE_URL}{reverse('intake-form', args=[source.slug])}"


class SourceSettingsForm(forms.Form):
    """The settings an admin changes after creation. Kind and slug are fixed: the channel's side is
    configured with the hook URL, which would silently break."""

    name = forms.CharField(label=gettext_lazy("Name"), max_length=80)
    enabled = forms.BooleanField(label=gettext_lazy("Enabled"), required=False)
    default_campaign = forms.CharField(label=gettext_lazy("Default campaign"), max_length=120, required=False)
    pipeline = forms.ModelChoiceField(
        label=gettext_lazy("Pipeline"), queryset=Pipeline.objects.none(), required=False
    )
    wecom_corp_id = forms.CharField(label=gettext_lazy("Corp ID"), max_length=64, required=False)
    # Secrets of WeCom: blank keeps the stored value, which is never sent back to the browser.
    wecom_token = forms.CharField(label=gettext_lazy("Token"), max_length=100, required=False)
    wecom_aes_key = forms.CharField(label=gettext_lazy("EncodingAESKey"), max_length=43, required=False)

    def __init__(self, *args: Any, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        pipeline = self.fields["pipeline"]
        # Only pipelines with a version in force: a copy never published has no stages for a lead.
        pipeline.queryset = Pipeline.objects.filter(stages__isnull=False).distinct().order_by("id")  # type: ignore[attr-defined]
        pipeline.empty_label = _("Default pipeline")  # type: ignore[attr-defined]
        if kind != SourceKind.WECOM:
            for name in ("wecom_corp_id", "wecom_token", "wecom_aes_key"):
                del self.fields[name]

    def changes(self) -> dict[str, Any]:
        """Keyword arguments for `services.source_update` / `source_create`."""
        data = self.cleaned_data
        changes = {
            "name": data["name"],
            "enabled": data["enabled"],
            "default_campaign": data["default_campaign"],
            "pipeline": data["pipeline"],
        }
        if self.kind == SourceKind.WECOM:
            changes["wecom_corp_id"] = data["wecom_corp_id"]
            for secret in ("wecom_token", "wecom_aes_key"):
                if data[secret]:
                    changes[secret] = data[secret]
        return changes


class SourceCreateForm(SourceSettingsForm):
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=SourceKind.choices)
    secret = forms.CharField(
        label=gettext_lazy("Secret"),
        max_length=200,
        required=False,
        help_text=gettext_lazy("Leave empty and a strong one is made for you; it is shown once."),
    )
    field_order = ["kind", "name", "enabled", "default_campaign", "pipeline", "secret"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Every field is offered until the kind is known; the service says which ones a kind needs.
        super().__init__(*args, kind=SourceKind.WECOM, **kwargs)
        self.fields["enabled"].initial = True

    def changes(self) -> dict[str, Any]:
        self.kind = self.cleaned_data["kind"]
        changes = super().changes()
        return {"kind": self.kind, "secret": self.cleaned_data["secret"], **changes}


@dataclass(frozen=True)
class MappingRow:
    """One of our fields: where the kind reads it by default, and the admin's override."""

    field: str
    default_path: str
    override: str  # as typed: "" = default, "-" = do not read
    error: str


def _mapping_posted(post: QueryDict) -> tuple[dict[str, str], dict[str, str]]:
    """The mapping rows as typed, and as the override mapping `source_update` takes: an empty row
    keeps the kind's default, `-` switches the field off. Every posted row is passed on, even one
    that is not ours, so the service — not the page — decides what is valid and says so by field."""
    typed = {
        key[len(MAPPING_PREFIX) :]: value.strip()
        for key, value in post.items()
        if key.startswith(MAPPING_PREFIX)
    }
    overrides = {field: ("" if path == MAPPING_OFF else path) for field, path in typed.items() if path}
    return typed, overrides


def _mapping_typed(source: Source) -> dict[str, str]:
    return {
        field: (MAPPING_OFF if path in ("", None) else str(path))
        for field, path in source.field_mapping.items()
    }


def _mapping_rows(kind: str, typed: dict[str, str], errors: dict[str, str]) -> list[MappingRow]:
    defaults = DEFAULT_MAPPINGS.get(kind, {})
    rows = []
    for field in ARRIVAL_FIELDS:
        rows.append(
            MappingRow(
                field=field,
                default_path=defaults.get(field, ""),
                override=typed.get(field, ""),
                error=errors.get(field, ""),
            )
        )
    return rows


_FIELD_PROBLEMS = {
    "name": gettext_lazy("Give the channel a name."),
    "kind": gettext_lazy("Choose a kind of channel."),
    "secret": gettext_lazy("Signed channels need a secret of at least 16 characters."),
    "wecom_token": gettext_lazy("A WeCom channel needs the callback Token."),
    "wecom_aes_key": gettext_lazy("The EncodingAESKey is 43 characters of base64 (a 32-byte key)."),
    "wecom_corp_id": gettext_lazy("A WeCom channel needs the corp ID."),
}
_MAPPING_ERROR = re.compile(r"^field_mapping\.(?P<field>[^:]+): (?P<message>.*)$", re.DOTALL)


def _mapping_problem(field: str, message: str) -> str:
    """The service explains a mapping in English for the API; the page says it in the user's
    language, keeping the service's words for a problem it has no words for."""
    if message.startswith("unknown field"):
        return _("%(field)s is not one of our fields.") % {"field": field}
    if message.startswith("a path is"):
        return _("A path is text of at most 200 characters, like remark_dict.公司名称.")
    return message


def _service_problems(form: forms.Form, exc: ValidationError) -> tuple[dict[str, str], list[str]]:
    """Spread a service's ValidationError over the page: a field's message next to the field, a
    mapping message next to its row (`field_mapping.fone` → row `fone`), anything else on top."""
    mapping_errors: dict[str, str] = {}
    general: list[str] = []
    error_dict = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
    for key, problems in error_dict.items():
        for message in problems:
            match = _MAPPING_ERROR.match(message) if key == "field_mapping" else None
            if match:
                mapping_errors[match["field"]] = _mapping_problem(match["field"], match["message"])
            elif key in form.fields:
                form.add_error(key, str(_FIELD_PROBLEMS.get(key, message)))
            else:
                general.append(f"{key}: {message}" if key else message)
    return mapping_errors, general


def _secret_once_keep(request: HttpRequest, source: Source) -> None:
    """A new secret is shown once, on the next view of its source, then forgotten: it rides in the
    session across the redirect (no reload re-posts the form) and is popped when shown."""
    if source.secret:
        request.session[SECRET_ONCE_KEY] = {"source_id": source.pk, "secret": source.secret}


def _secret_once_take(request: HttpRequest, source: Source) -> str:
    kept = request.session.get(SECRET_ONCE_KEY)
    if not kept or kept.get("source_id") != source.pk:
        return ""
    del request.session[SECRET_ONCE_KEY]
    return str(kept.get("secret", ""))


@login_required
@require_GET
def source_list_page(request: HttpRequest) -> HttpResponse:
    _require_intake_viewer(request.user)
    sources = list(selectors.sources_visible_to(request.user).select_related("pipeline").order_by("id"))
    return _render(
        request,
        "intake/pages/source_list.html",
        {"sources": sources, "is_admin": is_admin(request.user), "section": "sources"},
    )


@login_required
@require_http_methods(["GET", "POST"])
def source_new_page(request: HttpRequest) -> HttpResponse:
    _require_intake_viewer(request.user)
    if not is_admin(request.user):
        raise PermissionDenied("only administrators configure channels")
    form = SourceCreateForm(request.POST if request.method == "POST" else None)
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        try:
            source = services.source_create(actor=request.user, **form.changes())
        except ValidationError as exc:
            _mapping_errors, problems = _service_problems(form, exc)
        else:
            _secret_once_keep(request, source)
            messages.success(request, _("Channel created."))
            return redirect("intake-source-detail", source_id=source.pk)
    status = 422 if request.method == "POST" else 200
    return _render(
        request,
        "intake/pages/source_new.html",
        {"form": form, "problems": problems, "section": "sources", "signed_kinds": sorted(SIGNED_KINDS)},
        status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def source_detail_page(request: HttpRequest, source_id: int) -> HttpResponse:
    """C1.1 settings of one channel: URLs to give the channel, secrets, and the field mapping, whose
    fix followed by a retry rescues the dead letters it caused (C1.2)."""
    _require_intake_viewer(request.user)
    source = selectors.source_get(user=request.user, source_id=source_id)  # Http404 out of scope
    editable = is_admin(request.user)
    problems: list[str] = []
    mapping_errors: dict[str, str] = {}
    if request.method == "POST":
        if not editable:
            raise PermissionDenied("only administrators configure channels")
        form = SourceSettingsForm(request.POST, kind=source.kind)
        typed, overrides = _mapping_posted(request.POST)
        if form.is_valid():
            try:
                services.source_update(
                    actor=request.user, source=source, **form.changes(), field_mapping=overrides
                )
            except ValidationError as exc:
                mapping_errors, problems = _service_problems(form, exc)
                # the service set the refused values on our copy; show the stored channel
                source = selectors.source_get(user=request.user, source_id=source_id)
            else:
                messages.success(request, _("Saved."))
                return redirect("intake-source-detail", source_id=source.pk)
        status = 422
    else:
        form = SourceSettingsForm(
            initial={
                "name": source.name,
                "enabled": source.enabled,
                "default_campaign": source.default_campaign,
                "pipeline": source.pipeline_id,
                "wecom_corp_id": source.wecom_corp_id,
            },
            kind=source.kind,
        )
        typed = _mapping_typed(source)
        status = 200
    known = set(ARRIVAL_FIELDS)
    # A refused row that is not ours (a hand-made post) has no row to sit beside: say it on top.
    problems += [
        f"field_mapping.{field}: {message}" for field, message in mapping_errors.items() if field not in known
    ]
    recent = selectors.event_list(
        user=request.user, status=None, source_id=source.pk, cursor=None, limit=RECENT_EVENTS
    ).items
    context = {
        "source": source,
        "form": form,
        "editable": editable,
        "problems": problems,
        "mapping_rows": _mapping_rows(source.kind, typed, mapping_errors),
        "mapping_problem": bool(mapping_errors),
        "hook_url": _hook_url(source),
        "form_url": _form_url(source) if source.kind == SourceKind.WEB_FORM else "",
        "signed": source.kind in SIGNED_KINDS,
        "secret_once": _secret_once_take(request, source),
        "recent_events": recent,
        "section": "sources",
    }
    return _render(request, "intake/pages/source_detail.html", context, status)


@login_required
@require_POST
def source_secret_rotate(request: HttpRequest, source_id: int) -> HttpResponse:
    """A leaked secret is replaced, not revealed: the new one is shown once, the old one stops
    working at once (the channel must be given the new one)."""
    _require_intake_viewer(request.user)
    source = selectors.source_get(user=request.user, source_id=source_id)
    if source.kind not in SIGNED_KINDS:
        raise Http404("this kind of channel has no secret")
    source = services.source_update(actor=request.user, source=source, secret=secrets.token_urlsafe(32))
    _secret_once_keep(request, source)
    messages.success(request, _("A new secret was made; the old one no longer works."))
    return redirect("intake-source-detail", source_id=source.pk)


# --- events: the dead-letter list -----------------------------------------------------------


class EventFilterForm(forms.Form):
    status = forms.ChoiceField(label=gettext_lazy("Status"), required=False)
    source = forms.TypedChoiceField(
        label=gettext_lazy("Channel"), required=False, coerce=int, empty_value=None
    )

    def __init__(self, data: Any, *, sources: list[Source]) -> None:
        super().__init__(data)
        self.fields["status"].choices = [("", _("Any status")), *EventStatus.choices]
        self.fields["source"].choices = [("", _("All channels"))] + [
            (str(source.pk), source.name) for source in sources
        ]

    def query(self) -> dict[str, str]:
        return {name: str(value) for name, value in self.cleaned_data.items() if value}


def _event_list_url(**params: str) -> str:
    query = QueryDict(mutable=True)
    query.update({key: value for key, value in params.items() if value})
    encoded = query.urlencode()
    return reverse("intake-event-list") + (f"?{encoded}" if encoded else "")


@login_required
@require_GET
def event_list_page(request: HttpRequest) -> HttpResponse:
    """C1.2 dead letters: `?status=failed` lists what did not become a lead, with the reason."""
    _require_intake_viewer(request.user)
    sources = list(selectors.sources_visible_to(request.user).order_by("id"))
    form = EventFilterForm(request.GET, sources=sources)
    cursor = request.GET.get("cursor", "").strip() or None
    events: list[InboundEvent] = []
    problems: list[str] = []
    next_url = ""
    if form.is_valid():
        try:
            page = selectors.event_list(
                user=request.user,
                status=form.cleaned_data["status"] or None,
                source_id=form.cleaned_data["source"],
                cursor=cursor,
                limit=settings.SALESLOOP_PAGE_SIZE,
            )
        except CursorError:
            problems.append(_("This page link is not valid any more. Start again from the first page."))
        else:
            events = page.items
            if page.next_cursor:
                next_url = _event_list_url(**form.query(), cursor=page.next_cursor)
    else:
        problems = [
            _("%(field)s: %(message)s") % {"field": form.fields[name].label, "message": message}
            for name, errors in form.errors.items()
            for message in errors
        ]
    first_url = _event_list_url(**(form.query() if form.is_valid() else {})) if cursor else ""
    context = {
        "form": form,
        "events": events,
        "problems": problems,
        "next_url": next_url,
        "first_url": first_url,
        "failed_only": form.is_valid() and form.cleaned_data["status"] == EventStatus.FAILED,
        "section": "events",
    }
    fragment = _wants_fragment(request, "event-results")
    template = "intake/pages/_event_results.html" if fragment else "intake/pages/event_list.html"
    return _render(request, template, context, 400 if problems else 200)


def _event_context(request: HttpRequest, event: InboundEvent) -> dict[str, Any]:
    return {
        "event": event,
        "retry_allowed": _retry_allowed(request.user) and event.status == EventStatus.FAILED,
        "normalised": _pretty_json(event.normalised) if event.normalised else "",
    }


@login_required
@require_GET
def event_detail_page(request: HttpRequest, event_id: int) -> HttpResponse:
    """One inbound event as it came: the raw body, the headers kept, what the adapter read."""
    _require_intake_viewer(request.user)
    event = selectors.event_get(user=request.user, event_id=event_id)  # Http404 out of scope
    # The raw body holds phone numbers as sent: opening it is an unmasked view, and logged.
    personal_data_access_record(actor=request.user, subject=event, fields=["body"], channel="page")
    try:
        body = _pretty_json(json.loads(event.body))
        body_is_json = True
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        body, body_is_json = event.body, False
    context = {
        **_event_context(request, event),
        "body": body,
        "body_is_json": body_is_json,
        "headers": _pretty_json(event.headers) if event.headers else "",
        "section": "events",
    }
    return _render(request, "intake/pages/event_detail.html", context)


@login_required
@require_POST
def event_retry_page(request: HttpRequest, event_id: int) -> HttpResponse:
    """C1.2: process a failed event again from its stored raw payload (after a mapping fix)."""
    _require_intake_viewer(request.user)
    event = selectors.event_get(user=request.user, event_id=event_id)
    problems: list[str] = []
    try:
        event = services.event_retry(actor=request.user, event=event)  # PermissionDenied → 403
    except ValidationError:
        problems.append(_("Only failed events are retried; this one is already processed."))
        event = selectors.event_get(user=request.user, event_id=event_id)
    if _wants_fragment(request):
        context = {**_event_context(request, event), "problems": problems, "retried": not problems}
        return _render(request, "intake/pages/_event_retried.html", context, 422 if problems else 200)
    if problems:
        messages.error(request, problems[0])
    elif event.status == EventStatus.FAILED:
        messages.error(request, _("Still failing: %(error)s") % {"error": event.error})
    else:
        messages.success(request, _("Processed: %(status)s.") % {"status": event.get_status_display()})
    return redirect("intake-event-detail", event_id=event.pk)


# --- merge suggestions ----------------------------------------------------------------------


@dataclass(frozen=True)
class LeadSide:
    """One lead of a pair as people compare them: the phone masked, never logged as a view."""

    lead: Lead
    stage_label: str
    phone_masked: str


@dataclass(frozen=True)
class SuggestionCard:
    suggestion: MergeSuggestion
    lead: LeadSide
    candidate: LeadSide
    score_percent: str
    reasons: list[str]


def _lead_side(lead: Lead) -> LeadSide:
    return LeadSide(
        lead=lead,
        stage_label=lead.stage.label(_language()),
        phone_masked=mask_phone(lead.contact.phone) if lead.contact else "",
    )


def _merge_reasons(explanation: dict[str, Any]) -> list[str]:
    """The stored explanation (intake.explanations "merge_suggestion") in words."""
    reasons = []
    if explanation.get("company_key"):
        reasons.append(_("Same company (%(company)s)") % {"company": explanation["company_key"]})
    similarity = explanation.get("name_similarity")
    if similarity is not None:
        reasons.append(
            _("Contact names %(similarity)s alike: %(name)s / %(other_name)s")
            % {
                "similarity": f"{float(similarity) * 100:.0f}%",
                "name": explanation.get("name", ""),
                "other_name": explanation.get("other_name", ""),
            }
        )
    if explanation.get("same_surname"):
        reasons.append(_("Same surname (%(surname)s)") % {"surname": str(explanation.get("name", ""))[:1]})
    return reasons


def _suggestion_cards(suggestions: list[MergeSuggestion]) -> list[SuggestionCard]:
    # merge_suggestions() joins the leads and their contacts; the rest of each side is fetched here
    # in one query per relation, so the page costs the same for 5 pairs or 50.
    prefetch_related_objects(
        suggestions,
        "lead__customer",
        "lead__owner",
        "lead__stage",
        "candidate__customer",
        "candidate__owner",
        "candidate__stage",
    )
    return [
        SuggestionCard(
            suggestion=suggestion,
            lead=_lead_side(suggestion.lead),
            candidate=_lead_side(suggestion.candidate),
            score_percent=f"{float(suggestion.score) * 100:.0f}%",
            reasons=_merge_reasons(suggestion.explanation or {}),
        )
        for suggestion in suggestions
    ]


@login_required
@require_GET
def merge_list_page(request: HttpRequest) -> HttpResponse:
    """C1.4: open suggestions in the viewer's scope, each pair side by side with the reasons."""
    _require_intake_viewer(request.user)
    cursor = request.GET.get("cursor", "").strip() or None
    problems: list[str] = []
    try:
        page = selectors.merge_suggestions(
            user=request.user, cursor=cursor, limit=settings.SALESLOOP_PAGE_SIZE
        )
    except CursorError:
        problems.append(_("This page link is not valid any more. Start again from the first page."))
        page = selectors.merge_suggestions(user=request.user, cursor=None, limit=settings.SALESLOOP_PAGE_SIZE)
    base = reverse("intake-merge-list")
    context = {
        "cards": _suggestion_cards(page.items),
        "may_judge": merge_services.merge_allowed(request.user),
        "problems": problems,
        "next_url": f"{base}?cursor={page.next_cursor}" if page.next_cursor else "",
        "first_url": base if cursor else "",
        "section": "merges",
    }
    return _render(request, "intake/pages/merge_list.html", context, 400 if problems else 200)


def _suggestion_done(request: HttpRequest, outcome: str, context: dict[str, Any]) -> HttpResponse:
    """htmx: the judged pair's card is replaced by what happened; without htmx, back to the list."""
    if _wants_fragment(request):
        return _render(request, "intake/pages/_suggestion_done.html", {"outcome": outcome, **context})
    messages.success(request, context["message"])
    return redirect("intake-merge-list")


def _suggestion_refused(request: HttpRequest, suggestion_id: int, problem: str) -> HttpResponse:
    if _wants_fragment(request):
        context = {"outcome": "refused", "suggestion_id": suggestion_id, "message": problem}
        return _render(request, "intake/pages/_suggestion_done.html", context, 422)
    messages.error(request, problem)
    return redirect("intake-merge-list")


@login_required
@require_POST
def merge_apply_page(request: HttpRequest, suggestion_id: int) -> HttpResponse:
    """合并: the person chose which lead survives; the other folds into it (reversible, audited)."""
    _require_intake_viewer(request.user)
    suggestion = merge_services.merge_suggestion_get(user=request.user, suggestion_id=suggestion_id)
    keep = request.POST.get("survivor", "candidate")
    if keep not in {"lead", "candidate"}:
        return _suggestion_refused(request, suggestion.pk, _("Choose which lead to keep."))
    survivor, merged = (
        (suggestion.lead, suggestion.candidate) if keep == "lead" else (suggestion.candidate, suggestion.lead)
    )
    reason = request.POST.get("reason", "").strip()[:200] or _("Merge suggestion #%(id)s") % {
        "id": suggestion.pk
    }
    try:
        services.lead_merge(actor=request.user, survivor=survivor, merged=merged, reason=reason)
    except ValidationError as exc:
        message = " ".join(str(m) for m in exc.messages)
        return _suggestion_refused(request, suggestion.pk, _("Not merged: %(reason)s") % {"reason": message})
    return _suggestion_done(
        request,
        "merged",
        {
            "suggestion_id": suggestion.pk,
            "survivor": survivor,
            "merged": merged,
            "message": _("Merged: #%(merged)s now lives on in #%(survivor)s.")
            % {"merged": merged.pk, "survivor": survivor.pk},
        },
    )


@login_required
@require_POST
def merge_dismiss_page(request: HttpRequest, suggestion_id: int) -> HttpResponse:
    """不是同一人: the pair stays apart and is not suggested again."""
    _require_intake_viewer(request.user)
    suggestion = merge_services.merge_suggestion_get(user=request.user, suggestion_id=suggestion_id)
    merge_services.merge_suggestion_dismiss(
        actor=request.user, suggestion=suggestion, reason=request.POST.get("reason", "").strip()
    )
    return _suggestion_done(
        request,
        "dismissed",
        {"suggestion_id": suggestion.pk, "message": _("Kept apart: not the same person.")},
    )


# --- one lead: merge state and arrivals -----------------------------------------------------


@login_required
@require_GET
def lead_merge_page(request: HttpRequest, lead_id: int) -> HttpResponse:
    """A lead's merge state with un-merge buttons (C1.4 "merges are reversible and logged")."""
    _require_intake_viewer(request.user)
    lead = lead_get(user=request.user, lead_id=lead_id)  # Http404 out of scope
    state = merge_services.lead_merge_state(user=request.user, lead=lead)
    context = {
        "lead": lead,
        "state": state,
        "may_unmerge": merge_services.merge_allowed(request.user),
        "section": "merges",
    }
    return _render(request, "intake/pages/lead_merge.html", context)


@login_required
@require_POST
def lead_unmerge_page(request: HttpRequest, lead_id: int) -> HttpResponse:
    """Undo a merge: the lead is back in lists with everything it had. `shown` is the lead whose
    merge page the button was on (the survivor, or the lead itself)."""
    _require_intake_viewer(request.user)
    merged = lead_get(user=request.user, lead_id=lead_id)
    shown = request.POST.get("shown", "")
    back_to = int(shown) if shown.isdigit() and len(shown) < 19 else merged.pk
    try:
        services.lead_unmerge(
            actor=request.user, merged=merged, reason=request.POST.get("reason", "").strip()[:200]
        )
    except ValidationError:
        messages.error(request, _("Not un-merged: this lead is not merged."))
    else:
        messages.success(request, _("Un-merged: #%(lead)s is a lead of its own again.") % {"lead": merged.pk})
    return redirect("intake-lead-merge", lead_id=back_to)


@dataclass(frozen=True)
class ArrivalRow:
    event: InboundEvent
    message: str
    transcript: str
    via_merged: bool  # arrived for a lead since merged into this one


@login_required
@require_GET
def lead_arrivals_page(request: HttpRequest, lead_id: int) -> HttpResponse:
    """C1.7 "each lead shows when it arrived and when it was assigned", with every arrival (回流).

    Anyone who sees the lead sees this — reps included: it is part of the lead page. As an htmx
    request it is the fragment the lead page loads; otherwise a page of its own.
    """
    lead = lead_get(user=request.user, lead_id=lead_id)  # Http404 out of scope
    rows = [
        ArrivalRow(
            event=event,
            message=str((event.normalised or {}).get("message", "")),
            transcript=str((event.normalised or {}).get("transcript", "")),
            via_merged=event.lead_id != lead.pk,
        )
        for event in selectors.lead_arrivals(lead=lead)
    ]
    waiting = lead.assigned_at is None
    delay = timesince(lead.created_at, lead.assigned_at or clock.now(), depth=2)
    context = {"lead": lead, "rows": rows, "waiting": waiting, "delay": delay}
    if _wants_fragment(request):
        return _render(request, "intake/pages/_arrivals.html", context)
    return _render(request, "intake/pages/arrivals.html", context)
