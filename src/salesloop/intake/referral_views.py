"""C1.1 老客转介: a person working a customer records someone that customer referred."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from salesloop.core.roles import Role
from salesloop.crm.selectors import customer_get, leads_visible_to
from salesloop.intake.services import referral_create


class ReferralForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name of the referred person"), max_length=80)
    phone = forms.CharField(label=gettext_lazy("Phone"), max_length=40, required=False)
    company = forms.CharField(label=gettext_lazy("Company"), max_length=200, required=False)
    email = forms.EmailField(label=gettext_lazy("E-mail"), max_length=254, required=False)
    message = forms.CharField(
        label=gettext_lazy("Note"), max_length=2000, required=False, widget=forms.Textarea
    )

    def clean(self) -> dict:
        data = super().clean() or {}
        if not data.get("phone") and not data.get("email"):
            self.add_error("phone", _("Give a phone number or an e-mail."))
        return data


@login_required
@require_http_methods(["GET", "POST"])
def referral_page(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = customer_get(user=request.user, customer_id=customer_id)  # 404 out of scope
    if request.user.role == Role.PRODUCT_MANAGER and not request.user.is_superuser:
        raise PermissionDenied
    form = ReferralForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            outcome = referral_create(actor=request.user, referrer=customer, **form.cleaned_data)
        except ValidationError as exc:
            for field, problems in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, problems)
        else:
            if outcome.lead_id and leads_visible_to(request.user).filter(pk=outcome.lead_id).exists():
                messages.success(request, _("Referral recorded."))
                return redirect("lead-detail", lead_id=outcome.lead_id)
            messages.success(request, _("Referral recorded; the lead waits in the region's pool."))
            return redirect("intake-referral", customer_id=customer.pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "intake/referral.html", {"customer": customer, "form": form}, status=status)
