"""Rep routing pages (C8.5), mounted under `/routing/reps/`."""

from __future__ import annotations

from django.urls import URLPattern, path

from salesloop.routing import reps_views

urlpatterns: list[URLPattern] = [
    path("", reps_views.reps_review_page, name="routing-reps"),
    path("<int:user_id>/", reps_views.reps_profile_page, name="routing-rep"),
    path("<int:user_id>/tags", reps_views.reps_tag_page, name="routing-rep-tag"),
    path("<int:user_id>/leaves/", reps_views.reps_leave_create_page, name="routing-rep-leave-create"),
    path(
        "<int:user_id>/leaves/<int:leave_id>/delete",
        reps_views.reps_leave_delete_page,
        name="routing-rep-leave-delete",
    ),
]
