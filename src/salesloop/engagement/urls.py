"""Engagement pages (SPEC C3.4): the lead page's panel and its forms, and the public document viewer."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

from salesloop.engagement import checkin_views, viewer, views

urlpatterns: list[URLPattern | URLResolver] = [
    # the customer's side: no login, the secret token is the permission
    path("d/<str:token>", viewer.document_viewer, name="document-viewer"),
    path("d/<str:token>/file", viewer.document_file, name="document-viewer-file"),
    path("d/<str:token>/beat", viewer.document_beat, name="document-viewer-beat"),
]

# the rep's side: a panel on the lead page, every form posting back to it
urlpatterns += [
    path("leads/<int:lead_id>/engagement/", views.engagement_panel, name="engagement-panel"),
    path(
        "leads/<int:lead_id>/engagement/attachments",
        views.attachment_add_page,
        name="engagement-attachment-add",
    ),
    path(
        "leads/<int:lead_id>/engagement/attachments/<int:attachment_id>/file",
        views.attachment_file_page,
        name="engagement-attachment-file",
    ),
    path(
        "leads/<int:lead_id>/engagement/attachments/<int:attachment_id>/remove",
        views.attachment_remove_page,
        name="engagement-attachment-remove",
    ),
    path(
        "leads/<int:lead_id>/engagement/attachments/<int:attachment_id>/share",
        views.document_share_page,
        name="engagement-document-share",
    ),
    path(
        "leads/<int:lead_id>/engagement/documents/<int:document_id>/revoke",
        views.document_revoke_page,
        name="engagement-document-revoke",
    ),
    path("leads/<int:lead_id>/engagement/touches", views.touch_add_page, name="engagement-touch-add"),
    path(
        "leads/<int:lead_id>/engagement/touches/<int:touch_id>/responded",
        views.touch_responded_page,
        name="engagement-touch-responded",
    ),
    path("leads/<int:lead_id>/engagement/meetings", views.meeting_add_page, name="engagement-meeting-add"),
    path(
        "leads/<int:lead_id>/engagement/meetings/<int:meeting_id>/outcome",
        views.meeting_outcome_page,
        name="engagement-meeting-outcome",
    ),
    path("leads/<int:lead_id>/engagement/budget", views.budget_add_page, name="engagement-budget-add"),
]

# C4 check-ins: the phone-first form, the rep's day, the manager's team day, evidence files
urlpatterns += [
    path("checkins/new", checkin_views.checkin_new, name="checkin-new"),
    path("checkins/", checkin_views.checkin_day, name="checkin-day"),
    path("checkins/team/", checkin_views.checkin_team, name="checkin-team"),
    path("checkins/<int:checkin_id>/withdraw", checkin_views.checkin_withdraw_page, name="checkin-withdraw"),
    path(
        "checkins/evidence/<int:evidence_id>/file",
        checkin_views.checkin_evidence_file,
        name="checkin-evidence-file",
    ),
]
# issue 6 item 3: OCR of evidence beside each attachment, and the evidence search
urlpatterns += [path("", include("salesloop.engagement.ocr.urls"))]
