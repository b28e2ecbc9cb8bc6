"""Custom field pages (SPEC C10.1): the administrators' settings page, the lead page's panel of
custom values (loaded by htmx, like the other panels), the list's custom filters, and the export."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from salesloop.core.roles import Role, is_admin
from salesloop.crm.models import Attachment, Lead
from salesloop.crm.selectors import FilterError, LeadFilters, lead_editable, lead_get
from salesloop.crm.services import customer_update, lead_update
from salesloop.workspace import selectors, services
from salesloop.workspace.filters import custom_filter_params
from salesloop.workspace.forms import CustomFieldForm, CustomValuesForm
from salesloop.workspace.models import CustomField, CustomFieldEntity
from salesloop.workspace.values import values_clean


def _language() -> str:
    return translation.get_language() or settings.LANGUAGE_CODE


def _is_fragment(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _require_admin(request: HttpRequest) -> None:
    if not is_admin(request.user):
        raise PermissionDenied("only administrators define custom fields")


# --- settings: the definitions ----------------------------------------------------------------


def _field_rows(fields: list[CustomField], language: str) -> list[dict[str, Any]]:
    return [
        {
            "field": field,
            "label": selectors.custom_field_label(field, language),
            "choices": ", ".join(selectors.choice_label(field, c["value"], language) for c in field.choices),
            "required": bool((field.validation or {}).get("required")),
        }
        for field in fields
    ]


@login_required
@require_http_methods(["GET", "POST"])
def custom_fields_page(request: HttpRequest) -> HttpResponse:
    """List every field by record, and define a new one."""
    _require_admin(request)
    form = CustomFieldForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                field = services.custom_field_create(actor=request.user, **form.definition())
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, _("Saved: the field %(label)s.") % {"label": field.label_zh})
                return redirect("workspace-custom-fields")
        status = 422
    by_entity = selectors.custom_fields_by_entity()
    language = _language()
    groups = [
        {"title": label, "rows": _field_rows(by_entity[entity], language)}
        for entity, label in CustomFieldEntity.choices
    ]
    return _render(request, "workspace/custom_fields.html", {"form": form, "groups": groups}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def custom_field_page(request: HttpRequest, field_id: int) -> HttpResponse:
    """Change one field's labels, order, type or rules."""
    _require_admin(request)
    field = selectors.custom_field_get(field_id=field_id)
    form = CustomFieldForm(request.POST or None, field=field)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.custom_field_update(actor=request.user, field=field, **form.definition())
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(
                    request, _("Saved: the field %(label)s.") % {"label": form.cleaned_data["label_zh"]}
                )
                return redirect("workspace-custom-fields")
        status = 422
    return _render(request, "workspace/custom_field.html", {"form": form, "field": field}, status=status)


@login_required
@require_POST
def custom_field_archive_page(request: HttpRequest, field_id: int) -> HttpResponse:
    _require_admin(request)
    field = selectors.custom_field_get(field_id=field_id)
    archived = request.POST.get("archived", "1") != "0"
    field = services.custom_field_archive(actor=request.user, field=field, archived=archived)
    if archived:
        messages.success(request, _("Archived: %(label)s. Its values are kept.") % {"label": field.label_zh})
    else:
        messages.success(request, _("Restored: %(label)s.") % {"label": field.label_zh})
    return redirect("workspace-custom-fields")


# --- the lead page's panel ------------------------------------------------------------------


def _attachment_links(ids: set[int]) -> dict[int, Attachment]:
    return {a.pk: a for a in Attachment.objects.filter(pk__in=ids)} if ids else {}


def _value_rows(
    fields: list[CustomField], values: dict[str, Any], files: dict[int, Attachment], language: str
) -> list[dict[str, Any]]:
    rows = []
    for field in fields:
        value = (values or {}).get(field.name)
        if field.archived and value in (None, "", []):
            continue  # an archived field nobody filled in is history, not a gap
        attachment = files.get(value) if field.field_type == "file" and isinstance(value, int) else None
        rows.append(
            {
                "field": field,
                "label": selectors.custom_field_label(field, language),
                "display": selectors.custom_value_display(field, value, language),
                "attachment": attachment,
                "is_link": field.field_type == "link" and bool(value),
                "value": value,
            }
        )
    return rows


def _panel_context(
    request: HttpRequest, lead: Lead, *, form: CustomValuesForm | None = None, saved: bool = False
) -> dict[str, Any]:
    fields = selectors.custom_fields_by_entity()
    language = _language()
    current = {"lead": lead.custom_fields or {}, "customer": lead.customer.custom_fields or {}}
    file_ids = {v for entity in ("lead", "customer") for v in current[entity].values() if isinstance(v, int)}
    files = _attachment_links(file_ids)
    editable = _may_edit(request.user, lead)
    if editable and form is None:
        form = CustomValuesForm(fields=fields, current=current, language=language)
    return {
        "lead": lead,
        "lead_rows": _value_rows(fields["lead"], current["lead"], files, language),
        "customer_rows": _value_rows(fields["customer"], current["customer"], files, language),
        "form": form if editable else None,
        "has_fields": bool(fields["lead"] or fields["customer"]),
        "saved": saved,
        "open_form": bool(form is not None and form.is_bound and form.errors),
    }


def _may_edit(user: Any, lead: Lead) -> bool:
    return not (user.role == Role.PRODUCT_MANAGER and not user.is_superuser) and lead_editable(
        user=user, lead=lead
    )


def _panel(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    template = (
        "workspace/_lead_custom_fields.html" if _is_fragment(request) else "workspace/lead_custom_fields.html"
    )
    return _render(request, template, context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def lead_custom_fields_panel(request: HttpRequest, lead_id: int) -> HttpResponse:
    """The lead's and its customer's custom values; an editor changes them here (per-field errors,
    what they typed kept)."""
    lead = lead_get(user=request.user, lead_id=lead_id)  # Http404 when out of scope
    if request.method == "GET":
        return _panel(request, _panel_context(request, lead))
    if not _may_edit(request.user, lead):
        raise PermissionDenied("you may view this lead but not change it")
    fields = selectors.custom_fields_by_entity()
    current = {"lead": lead.custom_fields or {}, "customer": lead.customer.custom_fields or {}}
    form = CustomValuesForm(request.POST, request.FILES, fields=fields, current=current, language=_language())
    if form.is_valid() and _values_check(form, fields, lead):
        with transaction.atomic():
            _values_save(request, form, lead)
        lead = lead_get(user=request.user, lead_id=lead_id)
        if not _is_fragment(request):
            messages.success(request, _("Saved: the custom fields."))
            return redirect("lead-detail", lead_id=lead.pk)
        return _panel(request, _panel_context(request, lead, saved=True))
    return _panel(request, _panel_context(request, lead, form=form), status=422)


def _values_check(form: CustomValuesForm, fields: dict[str, list[CustomField]], lead: Lead) -> bool:
    """Every value checked before anything is saved, so the person sees all problems at once."""
    ok = True
    for entity, record in (("lead", lead), ("customer", lead.customer)):
        try:
            values_clean(fields[entity], form.values(entity), partial=True, record=record)
        except ValidationError as exc:
            form.add_service_errors(entity, exc)
            ok = False
    return ok


def _values_save(request: HttpRequest, form: CustomValuesForm, lead: Lead) -> None:
    values = {"lead": form.values("lead"), "customer": form.values("customer")}
    for entity, field, upload in form.uploads():
        # A file field's upload is an attachment of the lead, of kind `custom-<name>` (appended).
        attachment = Attachment.objects.create(
            lead=lead,
            kind=f"custom-{field.name}",
            title=(upload.name or field.name)[:200],
            file=upload,
            content_type=(getattr(upload, "content_type", "") or "")[:100],
            size=upload.size or 0,
            uploaded_by=request.user,
        )
        values[entity][field.name] = attachment.pk
    if values["lead"]:
        lead_update(actor=request.user, lead=lead, custom_fields=values["lead"])
    if values["customer"]:
        customer_update(actor=request.user, customer=lead.customer, custom_fields=values["customer"])


# --- the lead list: custom filters and the export --------------------------------------------


@login_required
@require_GET
def lead_custom_filters(request: HttpRequest) -> HttpResponse:
    """The custom field filters of the lead list, loaded into its filter form by htmx."""
    language = _language()
    rows = []
    for field in selectors.custom_fields_active(entity="lead"):
        if field.field_type == "long_text":
            continue
        rows.append(
            {
                "field": field,
                "label": selectors.custom_field_label(field, language),
                "key": f"cf.{field.name}",
                "value": request.GET.get(f"cf.{field.name}", ""),
                "min": request.GET.get(f"cf.{field.name}.min", ""),
                "max": request.GET.get(f"cf.{field.name}.max", ""),
                "choices": [
                    (c["value"], selectors.choice_label(field, c["value"], language)) for c in field.choices
                ],
            }
        )
    return _render(request, "workspace/_lead_filters.html", {"rows": rows})


def _record_id(value: str) -> int | None:
    return int(value) if value.isdigit() and 0 < int(value) < 2**63 else None


@login_required
@require_GET
def lead_export_page(request: HttpRequest) -> HttpResponse:
    """The lead list's filters, exported as CSV (the list's own parameters, `cursor` ignored)."""
    from salesloop.workspace.api import export_response

    owner = request.GET.get("owner", "")
    filters = LeadFilters(
        stage=request.GET.get("stage") or None,
        status=request.GET.get("status") or None,
        source=request.GET.get("source") or None,
        owner=_record_id(owner),
        unassigned=owner == "none",
        region=_record_id(request.GET.get("region", "")),
        q=(request.GET.get("q") or "").strip()[:100] or None,
        custom=custom_filter_params(request.GET) or None,
    )
    try:
        return export_response(request, filters, _language(), "page")
    except FilterError as exc:
        messages.error(request, _("This filter cannot be applied: %(field)s") % {"field": exc.field})
        return redirect("lead-list")
