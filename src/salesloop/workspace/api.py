"""REST endpoints for custom field definitions and the lead export (SPEC C10.1). Thin: parse,
call a service or selector; the services check that only administrators change definitions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse
from django.utils import translation
from ninja import Field, Query, Router, Schema, Status

from salesloop.core.schemas import RecordId, Text
from salesloop.crm.api import LeadFilterQuery, lead_filters_of
from salesloop.crm.selectors import LeadFilters
from salesloop.workspace import selectors, services
from salesloop.workspace.export import export_filename, lead_export_rows, lead_export_start
from salesloop.workspace.models import CustomField, CustomFieldEntity, CustomFieldType

router = Router()
export_router = Router()


class ChoiceSchema(Schema):
    value: Text(40)  # type: ignore[valid-type]
    label_zh: Text(60)  # type: ignore[valid-type]
    label_en: Text(60) = ""  # type: ignore[valid-type]


class CustomFieldOut(Schema):
    id: int
    entity: str
    name: str
    label_zh: str
    label_en: str
    field_type: str
    choices: list[dict[str, Any]]
    validation: dict[str, Any]
    help_text: str
    position: int
    archived: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class CustomFieldIn(Schema):
    entity: CustomFieldEntity
    name: Text(32) = Field(description="the key in custom_fields: a-z, 0-9, _; never changes")  # type: ignore[valid-type]
    label_zh: Text(60)  # type: ignore[valid-type]
    label_en: Text(60) = ""  # type: ignore[valid-type]
    field_type: CustomFieldType
    choices: list[ChoiceSchema] = Field(default_factory=list, max_length=200)
    validation: dict[str, Any] = Field(
        default_factory=dict,
        description="required (bool); text: max_length, pattern; long_text: max_length; "
        "number, money, date: min, max",
    )
    help_text: Text(200) = ""  # type: ignore[valid-type]
    position: int | None = Field(default=None, ge=0, le=32767)


class CustomFieldPatch(Schema):
    label_zh: Text(60) | None = None  # type: ignore[valid-type]
    label_en: Text(60) | None = None  # type: ignore[valid-type]
    field_type: CustomFieldType | None = None
    choices: list[ChoiceSchema] | None = Field(default=None, max_length=200)
    validation: dict[str, Any] | None = None
    help_text: Text(200) | None = None  # type: ignore[valid-type]
    position: int | None = Field(default=None, ge=0, le=32767)


class CustomFieldQuery(Schema):
    entity: CustomFieldEntity | None = None


def custom_field_out(field: CustomField) -> dict[str, Any]:
    return {
        "id": field.pk,
        "entity": field.entity,
        "name": field.name,
        "label_zh": field.label_zh,
        "label_en": field.label_en,
        "field_type": field.field_type,
        "choices": field.choices,
        "validation": field.validation,
        "help_text": field.help_text,
        "position": field.position,
        "archived": field.archived,
        "created_at": field.created_at,
        "updated_at": field.updated_at,
    }


@router.get("", response=list[CustomFieldOut], summary="Custom field definitions (archived included)")
def custom_field_list(request: HttpRequest, query: Query[CustomFieldQuery]) -> list[dict[str, Any]]:
    if query.entity:
        fields = selectors.custom_fields_all(entity=query.entity.value)
    else:
        by_entity = selectors.custom_fields_by_entity()
        fields = [*by_entity["lead"], *by_entity["customer"]]
    return [custom_field_out(field) for field in fields]


@router.get("/{field_id}", response=CustomFieldOut)
def custom_field_detail(request: HttpRequest, field_id: RecordId) -> dict[str, Any]:
    return custom_field_out(selectors.custom_field_get(field_id=field_id))


@router.post("", response={201: CustomFieldOut}, summary="Define a custom field (administrators)")
def custom_field_create(request: HttpRequest, payload: CustomFieldIn) -> Status[dict[str, Any]]:
    data = payload.dict()
    field = services.custom_field_create(
        actor=request.auth,  # type: ignore[attr-defined]
        **{**data, "entity": payload.entity.value, "field_type": payload.field_type.value},
    )
    return Status(201, custom_field_out(field))


@router.patch(
    "/{field_id}",
    response=CustomFieldOut,
    summary="Change a custom field (administrators); name and entity never change",
)
def custom_field_update(
    request: HttpRequest, field_id: RecordId, payload: CustomFieldPatch
) -> dict[str, Any]:
    field = selectors.custom_field_get(field_id=field_id)
    changes = payload.dict(exclude_unset=True)
    if changes.get("field_type") is not None:
        changes["field_type"] = payload.field_type.value  # type: ignore[union-attr]
    for key in ("label_zh", "field_type"):
        if key in changes and changes[key] is None:
            from django.core.exceptions import ValidationError

            raise ValidationError({key: "cannot be null"})
    field = services.custom_field_update(actor=request.auth, field=field, **changes)  # type: ignore[attr-defined]
    return custom_field_out(field)


@router.post(
    "/{field_id}/archive", response=CustomFieldOut, summary="Archive a field (values kept, read-only)"
)
def custom_field_archive(request: HttpRequest, field_id: RecordId) -> dict[str, Any]:
    field = selectors.custom_field_get(field_id=field_id)
    return custom_field_out(services.custom_field_archive(actor=request.auth, field=field))  # type: ignore[attr-defined]


@router.post("/{field_id}/restore", response=CustomFieldOut, summary="Restore an archived field")
def custom_field_restore(request: HttpRequest, field_id: RecordId) -> dict[str, Any]:
    field = selectors.custom_field_get(field_id=field_id)
    return custom_field_out(
        services.custom_field_archive(actor=request.auth, field=field, archived=False)  # type: ignore[attr-defined]
    )


# ---- the lead export ------------------------------------------------------------------------


class ExportQuery(LeadFilterQuery):
    lang: Text(10) | None = Field(default=None, description="column language: zh-hans (default) or en")  # type: ignore[valid-type]


def export_response(
    request: HttpRequest, filters: LeadFilters, language: str, channel: str
) -> StreamingHttpResponse:
    """The streaming CSV of the leads in the user's scope that pass `filters` (pages and API)."""
    user = request.user
    lead_export_start(user=user, filters=filters, channel=channel)
    response = StreamingHttpResponse(
        lead_export_rows(user=user, filters=filters, language=language, channel=channel),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{export_filename()}"'
    response["Cache-Control"] = "no-store"  # personal data
    return response


@export_router.get(
    "/leads.csv",
    summary="Export the leads in my scope as CSV (filters as in GET /leads, custom fields as columns)",
    description="Streams every matching lead, newest first. Phone and WeCom id are unmasked only on "
    "leads you may see them on; the export is logged. Custom field filters: `cf.<name>=value`, "
    "`cf.<name>.min`, `cf.<name>.max` (see GET /leads).",
    openapi_extra={
        "responses": {
            200: {
                "description": "CSV (UTF-8 with BOM)",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        }
    },
)
def lead_export(request: HttpRequest, query: Query[ExportQuery]) -> StreamingHttpResponse:
    filters = lead_filters_of(query, request)  # the list's own filters (crm.api)
    language = (
        "en" if (query.lang or translation.get_language() or "").lower().startswith("en") else "zh-hans"
    )
    request.user = request.auth  # type: ignore[attr-defined]
    return export_response(request, filters, language, "api")
