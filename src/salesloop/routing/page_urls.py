"""Rule sets, sandbox reports and a lead's assignments (SPEC C8), mounted under `/routing/`.

`/routing/reports/<id>/` is linked from the sales committee's notifications (services.py):
keep that path."""

from __future__ import annotations

from django.urls import URLPattern, path

from salesloop.routing.views import assignments, reports, versions

urlpatterns: list[URLPattern] = [
    path("", versions.overview_page, name="routing-overview"),
    path("rollback/", versions.rollback_page, name="routing-rollback"),
    path("rulesets/new/", versions.draft_new_page, name="routing-draft-new"),
    path("rulesets/<int:ruleset_id>/", versions.ruleset_page, name="routing-ruleset"),
    path("rulesets/<int:ruleset_id>/publish/", versions.publish_page, name="routing-publish"),
    path("rulesets/<int:ruleset_id>/cancel/", versions.cancel_page, name="routing-cancel"),
    path("rulesets/<int:ruleset_id>/simulate/", versions.simulate_page, name="routing-simulate"),
    path("rulesets/<int:ruleset_id>/ab-test/", versions.ab_test_page, name="routing-ab-test"),
    path("reports/<int:report_id>/", reports.report_page, name="routing-report"),
    path("reports/<int:report_id>/progress/", reports.report_progress_page, name="routing-report-progress"),
    path("reports/<int:report_id>/stop/", reports.ab_test_stop_page, name="routing-ab-test-stop"),
    path("leads/<int:lead_id>/assignment/", assignments.lead_assignment_page, name="routing-lead-assignment"),
]
