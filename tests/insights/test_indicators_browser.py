"""The indicator page in a real headless Chromium on a phone-sized screen (SPEC C5 charts): each
card's sparkline renders (Plotly draws an SVG) and no asset is broken."""

from __future__ import annotations

import pytest

from salesloop.core import clock
from tests.browsing import PHONE, log_in, watch_for_broken_assets

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_the_sparklines_render_on_a_phone(org, conversion_data, live_server, browser):
    clock.set_now(None)  # the live server runs on the real clock; the data is in the recent past
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    broken = watch_for_broken_assets(page)
    log_in(page, live_server.url, "carol")
    page.goto(f"{live_server.url}/insights/indicators/?scope=region:east&granularity=week")
    for name in ("conversion", "stall", "response"):
        page.wait_for_selector(f"#spark-{name} svg.main-svg", timeout=15_000)
        box = page.locator(f"#spark-{name}").bounding_box()
        assert box is not None and box["width"] <= PHONE["width"]  # fits the screen
    assert page.locator(".ind-card").count() == 3
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert broken == []
    context.close()
