"""The product in a real headless Chromium (Debian's, never a downloaded one) against a live server.

A missing Chromium fails this test on purpose: the suite skips nothing silently (Makefile
`browser` target installs it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest

from salesloop.pipeline.models import Stage
from salesloop.pipeline.services import lead_move_stage
from tests.factories import PASSWORD, contact_make, customer_make, lead_make

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PHONE = {"width": 390, "height": 844}

# A live server thread needs committed data; serialized_rollback restores the migrations' rows
# (provinces, the default pipeline) that the flush after a transactional test removes.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: run `make browser`"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def watch_for_broken_assets(page) -> list[str]:
    """Every stylesheet, script or page answered with an error, collected as the page runs."""
    broken: list[str] = []
    page.on("response", lambda r: broken.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return broken


def log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/")
    assert "/login/" in page.url  # anonymous visitors are sent to the login page
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{base_url}/")


def test_manager_logs_in_and_follows_a_lead_from_home_to_detail(browser, live_server, transactional_db, org):
    # given carol's region has leads, one of them further along, and 华南 has one she must not see
    customer = customer_make(province="31", name="上海云启科技有限公司")
    contact = contact_make(customer=customer, name="周经理", phone="+8613912345678")
    demo_lead = lead_make(owner=org.alice, customer=customer, contact=contact, title="云启 CRM 替换项目")
    lead_move_stage(actor=org.alice, lead=demo_lead, to_stage=Stage.objects.get(code="solution_demo"))
    lead_make(owner=org.bob, province="32")
    hidden = lead_make(owner=org.erin, province="44", title="华南的线索")

    page = browser.new_page()
    broken = watch_for_broken_assets(page)
    # when carol logs in through the form
    log_in(page, live_server.url, "carol")

    # then home shows her region's open leads per stage
    cards = page.locator(".stage-card")
    assert cards.count() == 5
    assert cards.nth(0).inner_text().split() == ["1", "初筛", "1"]
    assert cards.nth(2).inner_text().split() == ["3", "方案演示", "1"]

    # the lead list (via the nav) holds her region's leads, not 华南's
    page.get_by_role("navigation").get_by_role("link", name="线索", exact=True).click()
    page.wait_for_url(f"{live_server.url}/leads/")
    assert page.get_by_role("link", name="云启 CRM 替换项目").is_visible()
    assert page.get_by_text(hidden.title).count() == 0
    assert "139****5678" in page.locator("#lead-results").inner_text()

    # filtering goes through htmx: the results change, the URL follows
    page.locator("select[name=stage]").select_option("solution_demo")
    page.wait_for_url(re.compile(r".*stage=solution_demo.*"))
    page.wait_for_function("document.querySelectorAll('#lead-results tbody tr').length === 1")

    # the lead's page shows the stage bar at 方案演示 and, to her as manager, the full number
    page.get_by_role("link", name="云启 CRM 替换项目").click()
    page.wait_for_url(f"{live_server.url}/leads/{demo_lead.pk}/")
    current = page.locator('.stagebar [aria-current="step"]')
    assert "方案演示" in current.inner_text()
    assert page.locator(".stagebar__step.is-done").count() == 2
    assert page.locator(".contact .phone").inner_text() == "139 1234 5678"

    # and she moves it on without a page load; the stage bar follows
    page.locator("#move-form select[name=stage]").select_option("quote_negotiation")
    page.locator("#move-form").get_by_role("button", name="保存").click()
    page.wait_for_selector("#move-form .notice--success")
    assert "报价谈判" in page.locator('.stagebar [aria-current="step"]').inner_text()
    assert page.locator(".timeline__item").count() == 3
    assert broken == []  # the stylesheet, htmx and the icon were all served


def test_lead_list_is_cards_without_sideways_scrolling_on_a_phone(
    browser, live_server, transactional_db, org
):
    for n in range(4):
        lead_make(
            owner=org.alice,
            customer=customer_make(name=f"广州市番禺区超长名字的智能制造装备股份有限公司第{n}分公司"),
        )
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    log_in(page, live_server.url, "alice")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.goto(f"{live_server.url}/leads/")
    # each row is a card: no table header, rows laid out as blocks
    assert page.locator(".leads thead").is_hidden()
    assert page.locator(".leads tbody tr").first.evaluate("row => getComputedStyle(row).display") == "block"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.locator(".leads__title a").first.click()
    page.wait_for_selector(".stagebar")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    context.close()
