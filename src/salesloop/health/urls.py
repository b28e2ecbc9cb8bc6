"""Health score pages (SPEC C3), mounted under `/health/`."""

from __future__ import annotations

from django.urls import URLPattern, path

from salesloop.health import views

urlpatterns: list[URLPattern] = [
    path("settings/", views.settings_page, name="health-settings"),
    path("leads/<int:lead_id>/", views.lead_panel, name="health-lead-panel"),
]
