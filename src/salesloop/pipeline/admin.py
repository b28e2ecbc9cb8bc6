"""Admin for pipelines, stages and stage moves — all read-only.

Moves are facts appended by `lead_move_stage`; pipelines are versioned configuration whose editor
(SPEC C10.2) audits and publishes changes, so a hand edit here would bypass both.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from salesloop.core.admin import ReadOnlyAdmin
from salesloop.pipeline.models import Pipeline, Stage, StageMove


class StageInline(admin.TabularInline):
    model = Stage
    fields = ("position", "code", "name", "name_en", "requirements")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("position",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Pipeline)
class PipelineAdmin(ReadOnlyAdmin):
    list_display = ("name", "code", "is_default")
    inlines = (StageInline,)


@admin.register(Stage)
class StageAdmin(ReadOnlyAdmin):
    list_display = ("pipeline", "position", "code", "name", "name_en")
    list_select_related = ("pipeline",)
    list_filter = ("pipeline",)
    ordering = ("pipeline", "position")


@admin.register(StageMove)
class StageMoveAdmin(ReadOnlyAdmin):
    list_display = ("id", "lead", "from_stage", "to_stage", "from_status", "to_status", "actor", "at")
    list_select_related = ("lead", "from_stage", "to_stage", "actor")
    search_fields = ("=lead__id",)
    sortable_by = ("id",)
    ordering = ("-id",)
    raw_id_fields = ("lead", "actor")
