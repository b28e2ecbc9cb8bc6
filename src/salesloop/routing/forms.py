"""Forms of the routing pages (SPEC C8). They only parse what a person typed; every rule — notice
period, override, who may hand a lead to whom — is the services' to enforce, and their
ValidationErrors come back onto these forms by field (views.py)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from salesloop.core import clock

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"
POOL = "pool"  # owner choice: back to the region's pool (the API's owner_id null)


def local_input(moment: dt.datetime) -> str:
    """An aware moment as a `datetime-local` value, in the organisation's time zone."""
    return moment.astimezone(clock.org_tz()).strftime(DATETIME_LOCAL)


class DefinitionForm(forms.Form):
    """The rule-set document as typed. A syntax error is reported here with its line and column;
    whether the document is a valid rule set is the service's decision (ruleset.parse)."""

    definition = forms.CharField(
        label=gettext_lazy("Rule set (JSON)"),
        max_length=500_000,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 28, "spellcheck": "false", "class": "code-input"}),
    )

    def clean_definition(self) -> Any:
        text = self.cleaned_data["definition"]
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                _("Not valid JSON at line %(line)s, column %(column)s: %(message)s")
                % {"line": exc.lineno, "column": exc.colno, "message": exc.msg}
            ) from None
        except RecursionError:
            raise ValidationError(_("The document is nested too deeply.")) from None


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": gettext_lazy("Write down the reason.")},
    )


class PublishForm(forms.Form):
    """Publication: when (at least the notice period ahead), a note for the committee, and — when
    the simulation found region matching worse than the policy allows — the written override."""

    effective_at = forms.DateTimeField(
        label=gettext_lazy("Takes effect at"),
        input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )
    note = forms.CharField(
        label=gettext_lazy("Note to the sales committee"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    override_reason = forms.CharField(
        label=gettext_lazy("Override: why publish although the simulation found it worse"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, data: Any = None, *, earliest: dt.datetime, needs_override: bool) -> None:
        super().__init__(data, initial={"effective_at": local_input(earliest)})
        self.needs_override = needs_override
        if not needs_override:
            del self.fields["override_reason"]

    def clean_effective_at(self) -> dt.datetime:
        # The browser sends wall-clock time without a zone: it is the organisation's.
        value: dt.datetime = self.cleaned_data["effective_at"]
        naive = value.replace(tzinfo=None) if value.tzinfo else value
        return naive.replace(tzinfo=clock.org_tz())

    def override(self) -> str:
        return str(self.cleaned_data.get("override_reason") or "")


class ReplayForm(forms.Form):
    days = forms.IntegerField(label=gettext_lazy("Replay the last (days)"), min_value=1, max_value=3650)


class ABTestForm(forms.Form):
    share_percent = forms.DecimalField(
        label=gettext_lazy("Share of new leads (%)"), min_value=Decimal("0.1"), max_value=Decimal("90")
    )
    days = forms.IntegerField(label=gettext_lazy("For (days)"), min_value=1, max_value=90)

    def share(self) -> Decimal:
        return (self.cleaned_data["share_percent"] / 100).quantize(Decimal("0.001"))


class ReassignForm(forms.Form):
    """Hand a lead to someone else (or back to the pool), with the reason the trace keeps."""

    owner = forms.ChoiceField(label=gettext_lazy("New owner"))
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": gettext_lazy("Say why the lead changes hands.")},
    )

    def __init__(self, data: Any = None, *, people: list[tuple[int, str]]) -> None:
        super().__init__(data)
        self.fields["owner"].choices = [
            ("", _("Choose…")),
            *((str(pk), name) for pk, name in people),
            (POOL, _("Back to the region's pool")),
        ]

    def owner_id(self) -> int | None:
        value = self.cleaned_data["owner"]
        return None if value == POOL else int(value)
