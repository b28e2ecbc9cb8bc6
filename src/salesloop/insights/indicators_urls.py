from __future__ import annotations

from django.urls import path

from salesloop.insights import indicators_views as views

urlpatterns = [
    path("", views.indicators_page, name="insights-indicators"),
    path("leads/", views.indicator_leads_page, name="insights-indicator-leads"),
    path("thresholds/", views.thresholds_page, name="insights-indicator-thresholds"),
]
