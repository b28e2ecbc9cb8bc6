"""Plotly.js is served from the installed wheel, not from a copy in the repository."""

from __future__ import annotations

from pathlib import Path

from django.contrib.staticfiles import finders

from salesloop.core.staticfinders import PACKAGE_ASSETS


def test_it_finds_plotly_in_its_wheel():
    found = finders.find("vendor/plotly.min.js")

    assert found is not None
    assert "site-packages" in found or "dist-packages" in found
    assert Path(found).read_text(encoding="utf-8")[:200].lstrip().startswith("/**")


def test_collectstatic_lists_it_under_vendor():
    listed = {
        (storage.prefix or "") + "/" + path
        for finder in finders.get_finders()
        for path, storage in finder.list([])
        if getattr(storage, "prefix", None) == "vendor"
    }

    assert set(PACKAGE_ASSETS) <= listed


def test_it_is_served_over_http(client):
    response = client.get("/static/vendor/plotly.min.js")

    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"plotly" in body[:2000].lower()
