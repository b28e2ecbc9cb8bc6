"""Admin for the audit trail and the personal-data access log: both are facts, shown read-only.

The base classes here keep the admin from becoming a back door around the rules: records with a
service are changed through it, other configuration is audited like any other change.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from salesloop.core.audit import audit_record, jsonable
from salesloop.core.models import AuditEntry, PersonalDataAccess


class ReadOnlyAdmin(admin.ModelAdmin):
    """Facts are appended by the code that decides them, never written by hand (DESIGN.md rule 1)."""

    # Big append-only tables: never count them whole, and sort only by the indexed time.
    show_full_result_count = False
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AuditedAdmin(admin.ModelAdmin):
    """An edit in the admin writes the same audit entry (before → after) as any other change."""

    def save_model(self, request: HttpRequest, obj: Model, form: ModelForm, change: bool) -> None:
        changed = [name for name in form.changed_data if name != "password"]
        before = {name: jsonable(form.initial.get(name)) for name in changed} if change else None
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action=f"{obj._meta.model_name}.{'update' if change else 'create'}",
            target=obj,
            before=before,
            after={name: jsonable(form.cleaned_data.get(name)) for name in changed},
            reason="admin",
        )

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        audit_record(
            actor=request.user,
            action=f"{obj._meta.model_name}.delete",
            target=obj,
            before={"str": str(obj)},
            reason="admin",
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:  # one audit entry per record, as for a single delete
            self.delete_model(request, obj)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor", "action", "target_type", "target_id", "reason")
    list_select_related = ("actor",)
    search_fields = ("=target_id", "action")
    sortable_by = ("at",)
    raw_id_fields = ("actor",)


@admin.register(PersonalDataAccess)
class PersonalDataAccessAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor", "kind", "subject_type", "subject_id", "fields", "channel")
    list_select_related = ("actor",)
    list_filter = ("kind",)  # a distinct over `channel` would scan the whole log
    search_fields = ("=subject_id",)
    sortable_by = ("at",)
    raw_id_fields = ("actor",)
