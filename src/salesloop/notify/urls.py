"""Alert pages (SPEC C9 alerts), mounted under `/alerts/`."""

from __future__ import annotations

from django.urls import URLPattern, path

from salesloop.notify import views

urlpatterns: list[URLPattern] = [
    path("", views.alert_list_page, name="alerts"),
    path("deliveries/", views.delivery_list_page, name="alerts-deliveries"),
    path("deliveries/<int:delivery_id>/retry", views.delivery_retry_page, name="alerts-delivery-retry"),
    path("channels/", views.channel_list_page, name="alerts-channels"),
    path("channels/<int:channel_id>/", views.channel_edit_page, name="alerts-channel-edit"),
]
