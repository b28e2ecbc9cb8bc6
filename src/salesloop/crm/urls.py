from __future__ import annotations

from django.urls import path

from salesloop.crm import views

urlpatterns = [
    path("", views.home, name="home"),
    path("leads/", views.lead_list_page, name="lead-list"),
    path("leads/<int:lead_id>/", views.lead_detail_page, name="lead-detail"),
    path("leads/<int:lead_id>/move/", views.lead_move, name="lead-move"),
]
