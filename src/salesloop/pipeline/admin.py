"""Admin for pipelines, stages and stage moves — all read-only.

Moves are facts appended by `lead_move_stage`; pipelines are versioned configuration whose editor
(SPEC C10.2) audits and publishes changes, so a hand edit here would bypass both.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from salesloop.core.admin import ReadOnlyAdmin
from salesloop.pipeline.models import Pipeline, PipelineVersion, Stage, StageMove


class StageInline(admin.TabularInline):
    model = Stage
    fk_name = "pipeline"
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
    """The stages in force are listed; edit them in the pipeline editor (/pipelines/)."""

    list_display = ("name", "code", "is_default")
    inlines = (StageInline,)


class VersionStageInline(StageInline):
    fk_name = "version"


@admin.register(PipelineVersion)
class PipelineVersionAdmin(ReadOnlyAdmin):
    list_display = ("pipeline", "number", "status", "name", "published_at", "published_by")
    list_select_related = ("pipeline", "published_by")
    list_filter = ("pipeline", "status")
    ordering = ("pipeline", "-number")
    inlines = (VersionStageInline,)


@admin.register(Stage)
class StageAdmin(ReadOnlyAdmin):
    list_display = ("version", "position", "code", "name", "name_en", "pipeline")
    list_select_related = ("version__pipeline", "pipeline")
    list_filter = ("version__pipeline",)
    ordering = ("version", "position")


@admin.register(StageMove)
class StageMoveAdmin(ReadOnlyAdmin):
    list_display = ("id", "lead", "from_stage", "to_stage", "from_status", "to_status", "actor", "at")
    list_select_related = ("lead", "from_stage", "to_stage", "actor")
    search_fields = ("=lead__id",)
    sortable_by = ("id",)
    ordering = ("-id",)
    raw_id_fields = ("lead", "actor")
