"""The intake pages (settings of sources, dashboard, dead letters, merges, imports, cards),
mounted under `/intake/`."""

from __future__ import annotations

from django.urls import URLPattern, path

from salesloop.intake import card_views

urlpatterns: list[URLPattern] = [
    # C1.1 展会名片: trade-show cards
    path("cards/", card_views.card_list_page, name="card-list"),
    path("cards/upload/", card_views.card_upload_page, name="card-upload"),
    path("cards/<int:event_id>/", card_views.card_detail_page, name="card-detail"),
    path("cards/<int:event_id>/confirm/", card_views.card_confirm_page, name="card-confirm"),
    path("cards/<int:event_id>/retry/", card_views.card_retry_page, name="card-retry"),
    path("cards/<int:event_id>/image", card_views.card_image_page, name="card-image"),
]
