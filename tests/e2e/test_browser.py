"""The product in a real headless Chromium (Debian's, never a downloaded one) against a live server.

A missing Chromium fails this test on purpose: the suite skips nothing silently (Makefile
`browser` target installs it).
"""

from __future__ import annotations

import re

import pytest

from salesloop.pipeline.models import Stage
from salesloop.pipeline.services import lead_move_stage
from tests.browsing import PHONE, log_in, watch_for_broken_assets
from tests.factories import attachment_make, contact_make, customer_make, lead_make, lead_ready_for

# A live server thread needs committed data; serialized_rollback restores the migrations' rows
# (provinces, the default pipeline) that the flush after a transactional test removes.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_manager_logs_in_and_follows_a_lead_from_home_to_detail(browser, live_server, transactional_db, org):
    # given carol's region has leads, one of them further along, and 华南 has one she must not see
    customer = customer_make(province="31", name="上海云启科技有限公司")
    contact = contact_make(customer=customer, name="周经理", phone="+8613912345678")
    demo_lead = lead_make(owner=org.alice, customer=customer, contact=contact, title="云启 CRM 替换项目")
    lead_ready_for(demo_lead, "solution_demo")  # the pain-point list and the deck link (SPEC C2.2)
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

    # the next stage's needs are listed: the quote is missing, so moving on is refused, saying so
    assert "报价方案" in page.locator("#next-needs .is-missing").inner_text()
    page.locator("#move-form select[name=stage]").select_option("quote_negotiation")
    page.locator("#move-form").get_by_role("button", name="保存").click()
    page.wait_for_selector("#move-form .notice--error")
    assert "报价方案" in page.locator("#move-form .problems").inner_text()

    # once the quote is attached she moves it on without a page load; the stage bar follows
    page.wait_for_load_state("networkidle")  # the live server shares the test's SQLite connection
    attachment_make(demo_lead, "proposal", title="报价单 v1")
    page.locator("#move-form select[name=stage]").select_option("quote_negotiation")
    page.locator("#move-form").get_by_role("button", name="保存").click()
    page.wait_for_selector("#move-form .notice--success")
    assert "报价谈判" in page.locator('.stagebar [aria-current="step"]').inner_text()
    assert page.locator(".timeline__item").count() == 3
    # the stylesheet, htmx and the icon were all served; the one error is the refused move's 422
    assert broken == [f"422 {live_server.url}/leads/{demo_lead.pk}/move/"]


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


def test_pipeline_editor_and_stage_gates_fit_a_phone(browser, live_server, transactional_db, org):
    from salesloop.pipeline.selectors import pipeline_default

    lead = lead_make(owner=org.alice, title="手机上的线索")
    moved = lead_make(owner=org.alice, title="已确认需求的线索")
    lead_move_stage(actor=org.alice, lead=moved, to_stage=Stage.objects.get(code="needs_confirmed"))
    pipeline_id = pipeline_default().pk  # read before the pages load: the live server shares the connection
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    log_in(page, live_server.url, "alice")
    # the bulk move lists the leads of the list as filtered, also after an htmx filter
    page.goto(f"{live_server.url}/leads/")
    assert page.locator("#bulk-move input[name=lead_ids]").count() == 2
    page.locator(".filters select[name=stage]").select_option("needs_confirmed")
    page.wait_for_function("document.querySelectorAll('#bulk-move input[name=lead_ids]').length === 1")
    assert page.locator("#bulk-move input[name=lead_ids]").get_attribute("value") == str(moved.pk)
    page.goto(f"{live_server.url}/leads/{lead.pk}/")
    assert "需求确认" in page.locator("#next-needs").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    context.close()

    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    log_in(page, live_server.url, "director")
    page.goto(f"{live_server.url}/pipelines/{pipeline_id}/")
    page.get_by_role("button", name=re.compile("草稿|draft", re.I)).click()
    page.wait_for_selector("textarea[name=requirements-2]")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
