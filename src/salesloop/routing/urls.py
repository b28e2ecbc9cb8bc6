"""The routing pages, mounted under `/routing/`."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("", include("salesloop.routing.page_urls")),
    path("reps/", include("salesloop.routing.reps_urls")),
]
