"""Custom field pages: settings under /settings/custom-fields/, the lead page's panel, the lead
list's custom filters and its export."""

from __future__ import annotations

from django.urls import path

from salesloop.workspace import views

urlpatterns = [
    path("settings/custom-fields/", views.custom_fields_page, name="workspace-custom-fields"),
    path("settings/custom-fields/<int:field_id>/", views.custom_field_page, name="workspace-custom-field"),
    path(
        "settings/custom-fields/<int:field_id>/archive/",
        views.custom_field_archive_page,
        name="workspace-custom-field-archive",
    ),
    path("leads/export.csv", views.lead_export_page, name="workspace-lead-export"),
    path("leads/custom-filters/", views.lead_custom_filters, name="workspace-lead-filters"),
    path(
        "leads/<int:lead_id>/custom-fields/",
        views.lead_custom_fields_panel,
        name="workspace-lead-custom-fields",
    ),
]
