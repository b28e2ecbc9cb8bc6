"""The funnel page in a real headless Chromium on a phone-sized screen (SPEC C5): a manager opens
it, clicks a heat-map cell and sees the leads behind it — their region's, not another region's —
and the cycle-time chart is drawn."""

from __future__ import annotations

import pytest

from tests.browsing import PHONE, log_in, watch_for_broken_assets
from tests.insights.conftest import history  # noqa: F401 -- the worked-example fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_manager_clicks_a_heat_map_cell_and_sees_the_leads_behind_it(
    history,  # noqa: F811 -- the fixture imported above
    org,
    browser,
    live_server,
):
    # given the worked-example history: 华东 leads a, b, d and 华南 lead c all entered screening
    page = browser.new_page(viewport=PHONE)
    broken = watch_for_broken_assets(page)
    log_in(page, live_server.url, "carol")
    # when carol opens the funnel and clicks "passed through" of screening
    page.goto(f"{live_server.url}/insights/funnel")
    cell = page.get_by_role("button", name="初筛 · 经过数: 4")
    cell.click()
    # then the leads behind it are listed: her region's, not 华南's
    drill = page.locator("#funnel-drill")
    drill.locator(".funnel-leads__item").first.wait_for()
    links = drill.locator("a.funnel-leads__title")
    hrefs = {links.nth(i).get_attribute("href") for i in range(links.count())}
    assert hrefs == {f"/leads/{lead.pk}/" for lead in (history.a, history.b, history.d)}
    assert "最近跟进" in drill.inner_text()
    # and the cycle-time chart is drawn, within the phone's width; the table scrolls sideways
    page.locator("#cycle-chart .main-svg").first.wait_for()
    chart_width = page.locator("#cycle-chart").bounding_box()["width"]
    assert chart_width <= PHONE["width"]
    scrolls = page.locator(".funnel-heat").first.evaluate(
        "table => table.parentElement.scrollWidth > table.parentElement.clientWidth"
    )
    assert scrolls
    assert broken == []
