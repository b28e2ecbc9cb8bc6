"""Admin for people and the organisation: users, regions, teams, provinces and API tokens."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ValidationError
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from salesloop.accounts.models import ApiToken, Province, Region, Team, User
from salesloop.accounts.services import user_create
from salesloop.core.admin import AuditedAdmin, ReadOnlyAdmin
from salesloop.core.roles import Role


class UserAddForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("username", "display_name", "role", "region")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # Checked here too so the admin shows it on the form; user_create enforces it regardless.
        if cleaned.get("role") == Role.MANAGER and not cleaned.get("region"):
            raise ValidationError({"region": _("A regional manager needs a region.")})
        return cleaned


@admin.register(User)
class UserAdmin(AuditedAdmin, DjangoUserAdmin):
    add_form = UserAddForm
    list_display = ("username", "display_name", "role", "region", "team", "is_active", "last_login")
    list_filter = ("role", "region", "is_active")
    list_select_related = ("region", "team")
    search_fields = ("username", "display_name", "email")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Sales organisation"), {"fields": ("display_name", "role", "region", "team", "email")}),
        (_("Access"), {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "display_name", "role", "region", "password1", "password2"),
            },
        ),
    )
    readonly_fields = ("last_login", "date_joined")

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        # A new person goes through the service: it checks the role's rules and audits.
        created = user_create(
            actor=request.user,
            username=obj.username,
            password=form.cleaned_data["password1"],
            role=obj.role,
            region=obj.region,
            display_name=obj.display_name,
        )
        obj.pk = created.pk
        obj.password = created.password
        obj.is_staff, obj.is_superuser = created.is_staff, created.is_superuser


@admin.register(Region)
class RegionAdmin(AuditedAdmin):
    list_display = ("code", "name")
    search_fields = ("code", "name")


@admin.register(Team)
class TeamAdmin(AuditedAdmin):
    list_display = ("name", "region")
    list_select_related = ("region",)
    list_filter = ("region",)
    search_fields = ("name",)


@admin.register(Province)
class ProvinceAdmin(AuditedAdmin):
    """The provinces are fixed (GB/T 2260); which region each belongs to is ours to set."""

    list_display = ("code", "name", "region")
    list_editable = ("region",)
    list_select_related = ("region",)
    list_filter = ("region",)
    readonly_fields = ("code", "name")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Tokens are issued by `salesloop token create`; only a hash is stored, so nothing leaks here."""

    list_display = ("prefix", "user", "name", "created_at", "last_used_at", "revoked_at")
    list_select_related = ("user",)
    exclude = ("key_hash",)
    search_fields = ("prefix", "user__username")
