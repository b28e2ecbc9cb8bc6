"""Forms of the lead page's engagement panel. They parse what a person typed; the rules are the
services', whose ValidationErrors come back onto these forms by field (views.py)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from salesloop.core import clock
from salesloop.engagement.models import BudgetStage, MeetingStatus, TouchDirection, TouchKind

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"

# The kinds offered on the page (free entry is allowed too); stage requirements name these slugs.
COMMON_KINDS = [
    ("pain_points", _("Pain-point list")),
    ("deck_link", _("Deck link")),
    ("proposal", _("Proposal")),
    ("quote", _("Quotation")),
    ("contract", _("Contract")),
    ("case_study", _("Case study")),
    ("minutes", _("Meeting minutes")),
    ("other", _("Other")),
]


def local_now() -> str:
    return clock.now().astimezone(clock.org_tz()).strftime(DATETIME_LOCAL)


def _local_datetime(**kwargs: Any) -> forms.DateTimeField:
    return forms.DateTimeField(
        input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
        **kwargs,
    )


class AttachmentForm(forms.Form):
    kind = forms.CharField(
        label=_("Kind"),
        max_length=40,
        widget=forms.TextInput(attrs={"list": "attachment-kinds", "autocomplete": "off"}),
        help_text=_("Pick one or type your own (letters, digits, _)."),
    )
    title = forms.CharField(label=_("Title"), max_length=200, required=False)
    file = forms.FileField(
        label=_("File"), required=False, help_text=_("PDF, image or Office file, up to 20 MB")
    )
    url = forms.CharField(label=_("Or a link"), max_length=500, required=False, widget=forms.URLInput())


class TouchForm(forms.Form):
    # radio buttons, not selects: one tap each on a phone
    kind = forms.ChoiceField(
        label=_("What"), choices=TouchKind.choices, initial=TouchKind.CALL, widget=forms.RadioSelect
    )
    direction = forms.ChoiceField(
        label=_("Direction"),
        choices=TouchDirection.choices,
        initial=TouchDirection.OUTBOUND,
        widget=forms.RadioSelect,
    )
    responded = forms.ChoiceField(
        label=_("Customer responded"),
        choices=[("", _("Not known yet")), ("yes", _("Yes")), ("no", _("No"))],
        required=False,
        initial="",
        widget=forms.RadioSelect,
        help_text=_("Outbound only"),
    )
    customer_initiated = forms.BooleanField(
        label=_("The customer got in touch on their own"), required=False, help_text=_("Inbound only")
    )
    at = _local_datetime(label=_("Date and time"))
    contact = forms.TypedChoiceField(label=_("Contact"), required=False, coerce=int, empty_value=None)
    note = forms.CharField(
        label=_("Note"), max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: Any, contacts: list[Any] = (), **kwargs: Any) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kwargs)
        self.fields["contact"].choices = [("", "—")] + [(c.pk, c.name) for c in contacts]  # type: ignore[attr-defined]
        if not self.is_bound:
            self.initial.setdefault("at", local_now())

    def responded_value(self) -> bool | None:
        return {"yes": True, "no": False}.get(self.cleaned_data.get("responded") or "")


class MeetingForm(forms.Form):
    title = forms.CharField(label=_("Meeting"), max_length=200)
    scheduled_at = _local_datetime(label=_("Date and time"))
    planned_minutes = forms.IntegerField(label=_("Planned minutes"), min_value=1, max_value=1440, initial=60)
    online = forms.BooleanField(label=_("Online"), required=False)


class MeetingOutcomeForm(forms.Form):
    status = forms.ChoiceField(label=_("Meeting outcome"), choices=MeetingStatus.choices)
    attended_minutes = forms.IntegerField(
        label=_("Minutes attended"), min_value=0, max_value=1440, required=False, help_text=_("When attended")
    )
    minutes_text = forms.CharField(
        label=_("Meeting notes"), max_length=20000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


class BudgetForm(forms.Form):
    stage = forms.ChoiceField(label=_("Budget"), choices=BudgetStage.choices)
    amount_low = forms.DecimalField(
        label=_("From (¥)"), min_value=0, max_digits=14, decimal_places=2, required=False
    )
    amount_high = forms.DecimalField(
        label=_("To (¥)"), min_value=0, max_digits=14, decimal_places=2, required=False
    )
    note = forms.CharField(label=_("Note"), max_length=2000, required=False)
