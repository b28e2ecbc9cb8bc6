"""Evidence OCR pages (issue 6 item 3), included by `engagement.urls`."""

from __future__ import annotations

from django.urls import URLPattern, path

from salesloop.engagement.ocr import views

urlpatterns: list[URLPattern] = [
    path("evidence/search", views.evidence_search_page, name="evidence-search"),
    path(
        "leads/<int:lead_id>/engagement/attachments/<int:attachment_id>/ocr",
        views.attachment_ocr_fragment,
        name="engagement-attachment-ocr",
    ),
    path(
        "leads/<int:lead_id>/engagement/attachments/<int:attachment_id>/ocr/retry",
        views.attachment_ocr_retry_page,
        name="engagement-attachment-ocr-retry",
    ),
]
