"""Forms of the custom field pages: the definition form (administrators) and the values form that
the lead page builds from the definitions. Forms only parse; the services validate and decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from salesloop.workspace.models import CustomField, CustomFieldEntity, CustomFieldType
from salesloop.workspace.selectors import choice_label, custom_field_label

T = CustomFieldType
UPLOAD_LIMIT = 20 * 1024 * 1024  # 20 MB


def _number_or_text(value: str) -> Any:
    """min/max as typed: numbers for numbers, the text for dates (the service checks both)."""
    value = value.strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value else value


class CustomFieldForm(forms.Form):
    """One definition. `entity` and `name` only when creating: they never change afterwards."""

    entity = forms.ChoiceField(label=gettext_lazy("Record"), choices=CustomFieldEntity.choices)
    name = forms.CharField(
        label=gettext_lazy("Key"),
        max_length=32,
        help_text=gettext_lazy(
            "Lowercase letters, digits and _; used in the API and filters; cannot change."
        ),
    )
    label_zh = forms.CharField(label=gettext_lazy("Chinese label"), max_length=60)
    label_en = forms.CharField(label=gettext_lazy("English label"), max_length=60, required=False)
    field_type = forms.ChoiceField(label=gettext_lazy("Type"), choices=CustomFieldType.choices)
    choices = forms.CharField(
        label=gettext_lazy("Choices"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "a | 甲类 | Class A"}),
        help_text=gettext_lazy("Choice fields only: one per line, value | Chinese label | English label."),
    )
    required = forms.BooleanField(label=gettext_lazy("Required"), required=False)
    min_value = forms.CharField(label=gettext_lazy("Minimum"), required=False, max_length=40)
    max_value = forms.CharField(label=gettext_lazy("Maximum"), required=False, max_length=40)
    max_length = forms.IntegerField(label=gettext_lazy("Maximum length"), required=False, min_value=1)
    pattern = forms.CharField(
        label=gettext_lazy("Pattern (regular expression)"), required=False, max_length=200
    )
    help_text = forms.CharField(label=gettext_lazy("Help text"), required=False, max_length=200)
    position = forms.IntegerField(
        label=gettext_lazy("Position"), required=False, min_value=0, max_value=32767
    )

    def __init__(self, data: Any = None, *, field: CustomField | None = None) -> None:
        initial = None
        if field is not None:
            rules = field.validation or {}
            initial = {
                "label_zh": field.label_zh,
                "label_en": field.label_en,
                "field_type": field.field_type,
                "choices": "\n".join(
                    " | ".join([c["value"], c.get("label_zh", ""), c.get("label_en", "")]).rstrip(" |")
                    for c in field.choices or []
                ),
                "required": bool(rules.get("required")),
                "min_value": rules.get("min", ""),
                "max_value": rules.get("max", ""),
                "max_length": rules.get("max_length"),
                "pattern": rules.get("pattern", ""),
                "help_text": field.help_text,
                "position": field.position,
            }
        super().__init__(data, initial=initial)
        if field is not None:
            del self.fields["entity"]
            del self.fields["name"]

    def definition(self) -> dict[str, Any]:
        """The service's keyword arguments from the cleaned data."""
        data = self.cleaned_data
        choices = []
        for line in (data.get("choices") or "").splitlines():
            if not line.strip():
                continue
            parts = [part.strip() for part in line.split("|")]
            choices.append(
                {
                    "value": parts[0],
                    "label_zh": parts[1] if len(parts) > 1 else "",
                    "label_en": parts[2] if len(parts) > 2 else "",
                }
            )
        validation: dict[str, Any] = {"required": bool(data.get("required"))}
        if data.get("min_value"):
            validation["min"] = _number_or_text(data["min_value"])
        if data.get("max_value"):
            validation["max"] = _number_or_text(data["max_value"])
        if data.get("max_length"):
            validation["max_length"] = data["max_length"]
        if data.get("pattern"):
            validation["pattern"] = data["pattern"]
        # Keys that do not apply to the chosen type are dropped here, so a form left half-filled
        # after switching the type does not fail on a rule nobody sees.
        from salesloop.workspace.services import RULES

        validation = {k: v for k, v in validation.items() if k in RULES[data["field_type"]]}
        definition: dict[str, Any] = {
            "label_zh": data["label_zh"],
            "label_en": data.get("label_en") or "",
            "field_type": data["field_type"],
            "choices": choices if data["field_type"] in (T.CHOICE, T.MULTI_CHOICE) else [],
            "validation": validation,
            "help_text": data.get("help_text") or "",
        }
        if data.get("position") is not None:
            definition["position"] = data["position"]
        if "entity" in self.fields:
            definition["entity"] = data["entity"]
            definition["name"] = data["name"]
        return definition

    def add_service_errors(self, exc: ValidationError) -> None:
        targets = {"validation": None, "min": "min_value", "max": "max_value"}
        for key, messages in exc.message_dict.items():
            target = targets.get(key, key)
            self.add_error(target if target in self.fields else None, messages)


def input_name(entity: str, field: CustomField) -> str:
    return f"{entity}__{field.name}"


class CustomValuesForm(forms.Form):
    """The values of a lead's and its customer's active custom fields. Raw strings go to the
    services, which validate and normalise them (`custom_values_clean`); their errors come back
    per field with `add_service_errors`."""

    def __init__(
        self,
        data: Any = None,
        files: Any = None,
        *,
        fields: dict[str, list[CustomField]],
        current: dict[str, dict[str, Any]],
        language: str,
    ) -> None:
        super().__init__(data, files)
        self.definitions: dict[str, tuple[str, CustomField]] = {}
        for entity in ("lead", "customer"):
            for field in fields[entity]:
                if field.archived:
                    continue
                name = input_name(entity, field)
                self.definitions[name] = (entity, field)
                self.fields[name] = self._form_field(field, language)
                self.fields[name].initial = self._initial(field, current[entity].get(field.name))

    @staticmethod
    def _form_field(field: CustomField, language: str) -> forms.Field:
        label = custom_field_label(field, language)
        common: dict[str, Any] = {"label": label, "required": False, "help_text": field.help_text}
        if field.field_type == T.LONG_TEXT:
            return forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), strip=False, **common)
        if field.field_type == T.NUMBER:
            return forms.CharField(widget=forms.NumberInput(attrs={"step": "any"}), **common)
        if field.field_type == T.MONEY:
            return forms.CharField(widget=forms.TextInput(attrs={"inputmode": "decimal"}), **common)
        if field.field_type == T.DATE:
            return forms.CharField(widget=forms.DateInput(attrs={"type": "date"}), **common)
        if field.field_type == T.LINK:
            return forms.CharField(widget=forms.URLInput(attrs={"placeholder": "https://"}), **common)
        choices = [(c["value"], choice_label(field, c["value"], language)) for c in field.choices or []]
        if field.field_type == T.CHOICE:
            return forms.ChoiceField(choices=[("", "—"), *choices], **common)
        if field.field_type == T.MULTI_CHOICE:
            return forms.MultipleChoiceField(choices=choices, widget=forms.CheckboxSelectMultiple, **common)
        if field.field_type == T.FILE:
            return forms.FileField(**common)
        return forms.CharField(strip=False, **common)

    @staticmethod
    def _initial(field: CustomField, value: Any) -> Any:
        if field.field_type == T.FILE or value is None:
            return None
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name, upload in self.files.items() if self.files else []:
            if name in self.fields and getattr(upload, "size", 0) > UPLOAD_LIMIT:
                self.add_error(name, _("The file is larger than 20 MB."))
        return cleaned

    def values(self, entity: str) -> dict[str, Any]:
        """The submitted values of one entity, by field name (files are handled by the view)."""
        values: dict[str, Any] = {}
        for name, (field_entity, field) in self.definitions.items():
            if field_entity != entity or field.field_type == T.FILE:
                continue
            values[field.name] = self.cleaned_data.get(name)
        return values

    def uploads(self) -> list[tuple[str, CustomField, Any]]:
        return [
            (entity, field, self.cleaned_data[name])
            for name, (entity, field) in self.definitions.items()
            if field.field_type == T.FILE and self.cleaned_data.get(name)
        ]

    def add_service_errors(self, entity: str, exc: ValidationError) -> None:
        details = getattr(exc, "details", {})
        for key, messages in exc.message_dict.items():
            name = f"{entity}__{key.removeprefix('custom_fields.')}"
            code, params = details.get(key, ("", {}))
            words = VALUE_MESSAGES.get(code)
            shown = [str(words) % params] if words is not None else messages
            self.add_error(name if name in self.fields else None, shown)


# The services refuse in English (the API's language); the form says it in the reader's.
VALUE_MESSAGES = {
    "required": gettext_lazy("Required."),
    "unknown": gettext_lazy("No such custom field."),
    "archived": gettext_lazy("This field is archived: its value cannot be changed."),
    "not_text": gettext_lazy("Enter text."),
    "too_long": gettext_lazy("At most %(limit)s characters."),
    "pattern": gettext_lazy("Does not have the required format."),
    "not_number": gettext_lazy("Enter a number."),
    "min": gettext_lazy("At least %(min)s."),
    "max": gettext_lazy("At most %(max)s."),
    "too_large": gettext_lazy("Too large."),
    "decimals": gettext_lazy("At most 2 decimal places."),
    "not_choice": gettext_lazy("Choose one of the options."),
    "not_date": gettext_lazy("Enter a date (YYYY-MM-DD)."),
    "not_link": gettext_lazy("Enter a link starting with http:// or https://."),
    "not_file": gettext_lazy("Upload the file here."),
}
