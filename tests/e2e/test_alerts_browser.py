"""Alerts in a real headless Chromium on a phone-sized screen (SPEC C9): a rep opens the alerts
page from the menu, reads why and what to do, and follows the drill-down link; a manager adds a
robot and sees a mistake explained next to the field."""

from __future__ import annotations

import pytest

from tests.browsing import PHONE, log_in, watch_for_broken_assets
from tests.factories import lead_make
from tests.notify.conftest import raise_alert

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_rep_reads_an_alert_on_a_phone(browser, live_server, org, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    lead = lead_make(owner=org.alice, title="冷掉的项目")
    raise_alert(
        org,
        key=f"health:red:lead:{lead.pk}",
        kind="health.red",
        title="健康分 12：冷掉的项目 亮红灯",
        link=f"/leads/{lead.pk}/",
        suggested_response="本周内联系客户。",
        recipients=[org.alice],
    )
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    broken = watch_for_broken_assets(page)
    log_in(page, live_server.url, "alice")

    page.get_by_role("link", name="预警").click()
    page.wait_for_url(f"{live_server.url}/alerts/")
    assert page.get_by_text("健康分 12：冷掉的项目 亮红灯").is_visible()
    assert page.get_by_text("本周内联系客户。").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.get_by_role("link", name="查看详情").click()
    page.wait_for_url(f"{live_server.url}/leads/{lead.pk}/")
    assert broken == []
    context.close()


def test_a_manager_sees_a_wrong_webhook_explained_on_a_phone(browser, live_server, org):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    log_in(page, live_server.url, "carol")
    page.goto(f"{live_server.url}/alerts/channels/")
    page.get_by_label("名称").fill("华东销售群")
    page.get_by_label("Webhook 地址").fill("https://example.com/hook")
    page.get_by_role("button", name="添加机器人").click()

    error = page.locator(".field__error").first
    assert "qyapi.weixin.qq.com" in error.inner_text()
    assert page.get_by_label("名称").input_value() == "华东销售群"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    context.close()
