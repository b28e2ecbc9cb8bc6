"""The intake pages (settings of sources, dashboard, dead letters, merges, imports, cards)."""

from django.urls import path  # noqa: F401 -- the page helpers add their routes here

urlpatterns: list = []
