"""Import pages, mounted at `/intake/imports/`."""

from __future__ import annotations

from django.urls import URLPattern, path

from salesloop.intake.imports import views

urlpatterns: list[URLPattern] = [
    path("", views.import_list_page, name="import-list"),
    path("<int:job_id>/", views.import_detail_page, name="import-detail"),
    path("<int:job_id>/mapping/", views.import_mapping_page, name="import-mapping"),
    path("<int:job_id>/start/", views.import_start_page, name="import-start"),
    path("<int:job_id>/progress/", views.import_progress_fragment, name="import-progress"),
    path("<int:job_id>/rejected.csv", views.import_report_download, name="import-report"),
]
