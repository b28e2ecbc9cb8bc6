"""C10.1 in a real headless Chromium: the lead list's custom filters load into its form and filter
by htmx; the custom fields panel saves and shows per-field errors; nothing scrolls sideways on
a phone."""

from __future__ import annotations

import pytest

from tests import browsing as e2e
from tests.factories import lead_make
from tests.workspace.conftest import CHOICES, field_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_rep_filters_by_a_custom_field_and_edits_one_on_a_phone(
    browser, live_server, transactional_db, org
):
    field_make(org.admin, "tier", "choice", label_zh="客户等级", choices=CHOICES)
    field_make(org.admin, "seats", "number", label_zh="座席数", validation={"min": 1})
    gold = lead_make(owner=org.alice, title="甲类线索", custom_fields={"tier": "a", "seats": 50})
    lead_make(owner=org.alice, title="乙类线索", custom_fields={"tier": "b", "seats": 5})

    page = browser.new_page(viewport=e2e.PHONE)
    broken = e2e.watch_for_broken_assets(page)
    e2e.log_in(page, live_server.url, "alice")

    # the list's filter form gains the custom filters, and choosing one filters the results by htmx
    page.goto(f"{live_server.url}/leads/")
    tier = page.get_by_label("客户等级")
    tier.wait_for()
    assert page.get_by_role("link", name="乙类线索").is_visible()
    tier.select_option("a")
    page.wait_for_url("**cf.tier=a**")
    page.get_by_role("link", name="乙类线索").wait_for(state="detached")
    assert page.get_by_role("link", name="甲类线索").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # the custom fields panel: a bad value is refused by field, what was typed stays; then it saves
    # (the panel's own page: the lead page loads several panels at once, which a live server on an
    # in-memory SQLite database, one connection shared by its threads, does not survive)
    page.goto(f"{live_server.url}/leads/{gold.pk}/custom-fields/")
    panel = page.locator("#lead-custom-fields")
    panel.get_by_text("甲类").first.wait_for()
    panel.get_by_text("编辑字段").click()
    panel.get_by_label("座席数").fill("0")
    panel.get_by_role("button", name="保存").click()
    panel.get_by_text("不能小于 1。").wait_for()
    assert panel.get_by_label("座席数").input_value() == "0"
    panel.get_by_label("座席数").fill("80")
    panel.get_by_role("button", name="保存").click()
    panel.get_by_text("已保存自定义字段。").wait_for()
    gold.refresh_from_db()
    assert gold.custom_fields == {"tier": "a", "seats": 80}
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert [b for b in broken if not b.startswith("422 ")] == []  # the refused save answered 422
