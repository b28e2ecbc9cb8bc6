"""Insights pages (SPEC C5)."""

from __future__ import annotations

from django.urls import URLPattern, path

from salesloop.insights import views

urlpatterns: list[URLPattern] = [
    path("funnel", views.funnel_page, name="insights-funnel"),
    path("funnel/leads", views.funnel_leads_page, name="insights-funnel-leads"),
]
