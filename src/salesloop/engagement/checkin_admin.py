"""Admin for check-in action types (SPEC C4.1): the administrators' page for the configurable list.
Changes go through the services (checked, audited); types are retired, never deleted. Loaded by
EngagementConfig.ready (the app has no admin.py of its own)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.forms import ModelForm
from django.http import HttpRequest

from salesloop.engagement import checkin_services as services
from salesloop.engagement.checkin_models import CheckinActionType


@admin.register(CheckinActionType)
class CheckinActionTypeAdmin(admin.ModelAdmin):
    list_display = ("code", "label_zh", "label_en", "position", "active")
    fields = ("code", "label_zh", "label_en", "position", "active")
    ordering = ("position", "id")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("code",) if obj is not None else ()  # past check-ins keep their meaning

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # retire it instead (active = off)

    def save_model(self, request: HttpRequest, obj: CheckinActionType, form: ModelForm, change: bool) -> None:
        data = form.cleaned_data
        if change:
            fresh = CheckinActionType.objects.get(pk=obj.pk)
            changes = {name: data[name] for name in form.changed_data if name != "code"}
            saved = services.action_type_update(actor=request.user, action_type=fresh, **changes)
        else:
            saved = services.action_type_create(
                actor=request.user,
                code=data["code"],
                label_zh=data["label_zh"],
                label_en=data["label_en"],
                position=data["position"],
            )
            if not data.get("active", True):
                saved = services.action_type_update(actor=request.user, action_type=saved, active=False)
        obj.pk = saved.pk
