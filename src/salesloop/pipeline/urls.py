"""Pipeline pages (SPEC C10.2) and the lead list's bulk move (C2.2)."""

from __future__ import annotations

from django.urls import URLPattern, path

from salesloop.pipeline import views

urlpatterns: list[URLPattern] = [
    path("", views.pipeline_list_page, name="pipeline-list"),
    path("<int:pipeline_id>/", views.pipeline_detail_page, name="pipeline-detail"),
    path("<int:pipeline_id>/copy", views.pipeline_copy_page, name="pipeline-copy"),
    path("<int:pipeline_id>/draft/open", views.draft_open_page, name="pipeline-draft-open"),
    path("<int:pipeline_id>/draft", views.draft_save_page, name="pipeline-draft-save"),
    path("<int:pipeline_id>/draft/discard", views.draft_discard_page, name="pipeline-draft-discard"),
    path("<int:pipeline_id>/publish", views.publish_page, name="pipeline-publish"),
    path("moves", views.bulk_move_page, name="pipeline-bulk-move"),
]
