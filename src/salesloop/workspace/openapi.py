"""Custom fields typed in the OpenAPI document (SPEC C10.1).

The lead and customer schemas declare `custom_fields` as a plain object; each time the document is
generated (`/api/v1/openapi.json`), `install` replaces it with an object whose properties are the
fields defined now, each with its JSON type, so clients and the fuzzer see a new field at once,
without a restart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import DatabaseError

from salesloop.workspace.models import CustomField, CustomFieldType
from salesloop.workspace.values import LINK_MAX_LENGTH, TEXT_MAX_LENGTH

T = CustomFieldType
# component of the API → (entity, kind): out = responses, in = create bodies, patch = change bodies
COMPONENTS = {
    "LeadOut": ("lead", "out"),
    "LeadIn": ("lead", "in"),
    "LeadPatch": ("lead", "patch"),
    "CustomerOut": ("customer", "out"),
    "CustomerIn": ("customer", "in"),
    "CustomerPatch": ("customer", "patch"),
}
MONEY_PATTERN = r"^-?\d{1,12}(\.\d{1,2})?$"


def field_json_schema(field: CustomField) -> dict[str, Any]:
    """The JSON schema of one field's value."""
    rules = field.validation or {}
    schema: dict[str, Any]
    if field.field_type in (T.TEXT, T.LONG_TEXT):
        schema = {"type": "string", "maxLength": rules.get("max_length") or TEXT_MAX_LENGTH[field.field_type]}
        if rules.get("pattern") and field.field_type == T.TEXT:
            schema["pattern"] = rules["pattern"]
    elif field.field_type == T.NUMBER:
        schema = {"type": "number"}
        if rules.get("min") is not None:
            schema["minimum"] = rules["min"]
        if rules.get("max") is not None:
            schema["maximum"] = rules["max"]
    elif field.field_type == T.MONEY:
        schema = {"type": "string", "format": "decimal", "pattern": MONEY_PATTERN}
    elif field.field_type == T.CHOICE:
        schema = {"type": "string", "enum": [c["value"] for c in field.choices]}
    elif field.field_type == T.MULTI_CHOICE:
        schema = {
            "type": "array",
            "items": {"type": "string", "enum": [c["value"] for c in field.choices]},
            "uniqueItems": True,
        }
    elif field.field_type == T.DATE:
        schema = {"type": "string", "format": "date"}
    elif field.field_type == T.LINK:
        schema = {"type": "string", "format": "uri", "maxLength": LINK_MAX_LENGTH}
    else:  # file
        schema = {"type": "integer", "minimum": 1, "description": "id of an attachment of the lead"}
    label = field.label_zh + (f" / {field.label_en}" if field.label_en else "")
    schema["title"] = label
    notes = [schema.get("description", ""), field.help_text]
    if field.field_type == T.MONEY:
        notes.append('money: a decimal string with 2 places, e.g. "1234.50"')
    if rules.get("required"):
        notes.append("required when the record is created")
    if field.archived:
        notes.append("archived: kept and shown, not editable")
        schema["readOnly"] = True
    schema["description"] = "; ".join(note for note in notes if note)
    return schema


def custom_fields_component(fields: list[CustomField], kind: str) -> dict[str, Any]:
    shown = fields if kind == "out" else [field for field in fields if not field.archived]
    properties: dict[str, Any] = {}
    for field in shown:
        schema = field_json_schema(field)
        if kind == "patch":
            schema = {
                "anyOf": [schema, {"type": "null"}],
                "title": schema["title"],
                "description": "null clears",
            }
        properties[field.name] = schema
    component: dict[str, Any] = {"type": "object", "properties": properties}
    if kind != "out":
        component["additionalProperties"] = False  # unknown names are refused
    if kind == "in":
        required = [f.name for f in shown if (f.validation or {}).get("required")]
        if required:
            component["required"] = required
    return component


def openapi_with_custom_fields(schema: dict[str, Any]) -> dict[str, Any]:
    """The document with `custom_fields` typed from the definitions in the database now."""
    components = schema.get("components", {}).get("schemas", {})
    try:
        fields = list(CustomField.objects.order_by("position", "id"))
    except (DatabaseError, RuntimeError):
        # No database yet (a build step, a test collection without database access): the document
        # keeps the untyped object, which is still true.
        return schema
    for component, (entity, kind) in COMPONENTS.items():
        properties = components.get(component, {}).get("properties", {})
        if "custom_fields" not in properties:
            continue
        name = f"{entity.title()}CustomFields{'' if kind == 'out' else kind.title()}"
        components[name] = custom_fields_component([f for f in fields if f.entity == entity], kind)
        description = properties["custom_fields"].get("description", "")
        ref: dict[str, Any] = {"$ref": f"#/components/schemas/{name}"}
        if kind == "patch":
            ref = {"anyOf": [ref, {"type": "null"}]}
        properties["custom_fields"] = {**ref, "description": description}
    return schema


def install(api: Any) -> None:
    """Wrap the NinjaAPI's document generator (called per request of openapi.json)."""
    generate: Callable[..., Any] = api.get_openapi_schema

    def get_openapi_schema(*args: Any, **kwargs: Any) -> Any:
        return openapi_with_custom_fields(generate(*args, **kwargs))

    api.get_openapi_schema = get_openapi_schema
