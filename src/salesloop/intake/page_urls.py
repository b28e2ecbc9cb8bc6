"""The intake pages (settings of sources, dashboard, dead letters, merges, imports, cards),
mounted under `/intake/`."""

from __future__ import annotations

from django.urls import URLPattern, path

from salesloop.intake import card_views, referral_views
from salesloop.intake import pages as intake_pages

urlpatterns: list[URLPattern] = [
    # C1.1 展会名片: trade-show cards
    path("cards/", card_views.card_list_page, name="card-list"),
    path("cards/upload/", card_views.card_upload_page, name="card-upload"),
    path("cards/<int:event_id>/", card_views.card_detail_page, name="card-detail"),
    path("cards/<int:event_id>/confirm/", card_views.card_confirm_page, name="card-confirm"),
    path("cards/<int:event_id>/retry/", card_views.card_retry_page, name="card-retry"),
    path("cards/<int:event_id>/image", card_views.card_image_page, name="card-image"),
]

# C1 intake pages: dashboard, channels, dead letters, merges, a lead's merge state and arrivals
urlpatterns += [
    path("", intake_pages.dashboard_page, name="intake-dashboard"),
    path("sources/", intake_pages.source_list_page, name="intake-source-list"),
    path("sources/new", intake_pages.source_new_page, name="intake-source-new"),
    path("sources/<int:source_id>/", intake_pages.source_detail_page, name="intake-source-detail"),
    path("sources/<int:source_id>/secret", intake_pages.source_secret_rotate, name="intake-source-rotate"),
    path("events/", intake_pages.event_list_page, name="intake-event-list"),
    path("events/<int:event_id>/", intake_pages.event_detail_page, name="intake-event-detail"),
    path("events/<int:event_id>/retry", intake_pages.event_retry_page, name="intake-event-retry"),
    path("merges/", intake_pages.merge_list_page, name="intake-merge-list"),
    path("merges/<int:suggestion_id>/merge", intake_pages.merge_apply_page, name="intake-merge-apply"),
    path("merges/<int:suggestion_id>/dismiss", intake_pages.merge_dismiss_page, name="intake-merge-dismiss"),
    path("leads/<int:lead_id>/merge/", intake_pages.lead_merge_page, name="intake-lead-merge"),
    path("leads/<int:lead_id>/unmerge", intake_pages.lead_unmerge_page, name="intake-lead-unmerge"),
    path("leads/<int:lead_id>/arrivals/", intake_pages.lead_arrivals_page, name="intake-lead-arrivals"),
]

# C1.1 老客转介: a referral recorded from the customer's side of a lead
urlpatterns += [
    path("customers/<int:customer_id>/referral/", referral_views.referral_page, name="intake-referral"),
]
