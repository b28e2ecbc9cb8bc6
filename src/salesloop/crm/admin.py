"""Admin for customers, contacts and leads.

Changes go through the crm services (normalisation, rules, audit), never a bare `.save()`.
A lead's stage and status are read-only here: they change only by a stage move (pipeline.services).
The lead list is built for a million rows: joins selected up front, no full count, sorting only
by indexed columns, foreign keys as raw ids instead of dropdowns of every record.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import ForeignKey, QuerySet
from django.forms import ModelChoiceField, ModelForm
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from salesloop.accounts.models import User
from salesloop.core.audit import personal_data_access_record
from salesloop.core.roles import Role, mask_phone
from salesloop.crm import services
from salesloop.crm.models import Contact, Customer, Lead
from salesloop.pipeline.models import StageMove

CUSTOMER_FIELDS = ("name", "industry", "size", "province", "city")
CONTACT_FIELDS = ("customer", "name", "title", "phone", "wecom_external_id", "email")
LEAD_EDITABLE = ("title", "campaign", "expected_amount", "owner")


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("name", "industry", "size", "province", "city", "created_at")
    list_select_related = ("province",)
    search_fields = ("name",)
    sortable_by = ("name",)
    fields = CUSTOMER_FIELDS
    show_full_result_count = False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # leads hang on customers; erasure of personal data is its own service

    def save_model(self, request: HttpRequest, obj: Customer, form: ModelForm, change: bool) -> None:
        data = {name: form.cleaned_data[name] for name in CUSTOMER_FIELDS}
        if change:
            fresh = Customer.objects.get(pk=obj.pk)
            changes = {name: data[name] for name in form.changed_data if name in data}
            saved = services.customer_update(actor=request.user, customer=fresh, **changes)
        else:
            saved = services.customer_create(actor=request.user, **data)
        obj.pk = saved.pk


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("name", "title", "customer", "phone_masked", "created_at")
    list_select_related = ("customer",)
    search_fields = ("name", "=phone", "=email")
    sortable_by = ()
    raw_id_fields = ("customer",)
    fields = CONTACT_FIELDS
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("customer",) if obj is not None else ()  # contact_update does not move people

    @admin.display(description=_("Phone"))
    def phone_masked(self, contact: Contact) -> str:
        return mask_phone(contact.phone)  # a list of numbers is a list nobody needs to read

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        # The form shows the number in full: that is an unmasked view and is logged like one.
        contact = Contact.objects.filter(pk=object_id).first() if object_id.isdigit() else None
        if request.method == "GET" and contact is not None:
            fields = [f for f in ("phone", "wecom_external_id", "email") if getattr(contact, f)]
            if fields:
                personal_data_access_record(
                    actor=request.user, subject=contact, fields=fields, channel="admin"
                )
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: Contact, form: ModelForm, change: bool) -> None:
        data = {name: form.cleaned_data[name] for name in CONTACT_FIELDS if name in form.cleaned_data}
        if change:
            fresh = Contact.objects.get(pk=obj.pk)
            changes = {name: data[name] for name in form.changed_data if name in data}
            saved = services.contact_update(actor=request.user, contact=fresh, **changes)
        else:
            saved = services.contact_create(actor=request.user, **data)
        obj.pk = saved.pk


class StageMoveInline(admin.TabularInline):
    model = StageMove
    fields = ("at", "from_stage", "to_stage", "from_status", "to_status", "actor", "reason", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("at", "id")

    def get_queryset(self, request: HttpRequest) -> QuerySet[StageMove]:
        return super().get_queryset(request).select_related("from_stage", "to_stage", "actor")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LeadAdminForm(ModelForm):
    expected_amount = forms.DecimalField(min_value=0, max_digits=14, decimal_places=2)

    class Meta:
        model = Lead
        fields = LEAD_EDITABLE


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    form = LeadAdminForm
    list_display = ("id", "title", "customer", "stage", "status", "owner", "region", "source", "created_at")
    list_display_links = ("id", "title")
    list_select_related = ("customer", "stage", "owner", "region")
    # By stage code: a code has a row in every version of the pipeline (SPEC C10.2).
    list_filter = ("status", "source", "region", "stage__code")
    search_fields = ("=id", "title")
    sortable_by = ("id", "created_at")
    ordering = ("-id",)
    show_full_result_count = False
    raw_id_fields = ("owner",)
    readonly_fields = (
        "customer",
        "contact",
        "source",
        "region",
        "pipeline",
        "stage",
        "status",
        "lost_reason",
        "stage_entered_at",
        "assigned_at",
        "closed_at",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("title", "customer", "contact", "owner", "campaign", "expected_amount")}),
        (
            _("Stage"),
            {
                "fields": ("pipeline", "stage", "status", "lost_reason", "stage_entered_at", "closed_at"),
                "description": _("Stage and status change only by a stage move, on the lead's page."),
            },
        ),
        (None, {"fields": ("source", "region", "assigned_at", "created_at", "updated_at")}),
    )
    inlines = (StageMoveInline,)

    def formfield_for_foreignkey(
        self, db_field: ForeignKey, request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField:
        if db_field.name == "owner":
            # The same rule lead_update enforces, here so a wrong choice is a form error, not a 500.
            kwargs["queryset"] = User.objects.filter(is_active=True, role__in=[Role.REP, Role.MANAGER])
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a lead is born through intake, the pages or the API, with its first move

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Lead, form: ModelForm, change: bool) -> None:
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in LEAD_EDITABLE}
        if "owner" in changes:
            # A change of hands is an assignment (C8.2): traced with the person who made it.
            from salesloop.routing.services import lead_reassign

            lead_reassign(
                actor=request.user,
                lead=Lead.objects.get(pk=obj.pk),
                owner=changes.pop("owner"),
                reason="changed in the administration",
            )
        if changes:
            services.lead_update(actor=request.user, lead=Lead.objects.get(pk=obj.pk), **changes)
