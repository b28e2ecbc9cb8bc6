"""Tracked documents in a real headless Chromium (SPEC C3.4): the customer opens the share link
without logging in, stays N seconds, leaves, and the recorded seconds are N; time while the page is
hidden does not count. Then the rep sees the openings on the lead page, on a phone-sized screen."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from salesloop.engagement import services
from salesloop.engagement.models import DocumentView, Touch
from tests.browsing import PHONE
from tests.engagement.conftest import pdf_bytes
from tests.factories import PASSWORD, lead_make

STAY_SECONDS = 6
TOLERANCE = 1.5  # page load and the last beacon's trip, on a busy 2-core machine

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def shared_pdf(org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SALESLOOP_VIEWER_BEAT_SECONDS = 1  # beat every second so the test stays short
    lead = lead_make(owner=org.alice, title="云启 CRM 替换项目")
    upload = SimpleUploadedFile(
        "报价方案.pdf", pdf_bytes("salesloop proposal"), content_type="application/pdf"
    )
    attachment = services.attachment_add(
        actor=org.alice, lead=lead, kind="proposal", title="报价方案", file=upload
    )
    return services.document_share(actor=org.alice, attachment=attachment)


def wait_for_final_beat(view: DocumentView, timeout: float = 5.0) -> DocumentView:
    """The beacon sent on leaving arrives a moment later: wait until the view stops changing."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        view.refresh_from_db()
        if last is not None and view.visible_ms == last:
            break
        last = view.visible_ms
        time.sleep(0.7)
    return view


def set_visibility(page, state: str) -> None:
    """What a browser does when the tab goes to the background or comes back (headless Chromium
    has no other tab to switch to, so the page's own view of it is changed and announced)."""
    page.evaluate(
        """state => {
            Object.defineProperty(document, "visibilityState", {configurable: true, get: () => state});
            Object.defineProperty(document, "hidden", {configurable: true, get: () => state === "hidden"});
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        state,
    )


def test_the_viewer_records_the_seconds_actually_viewed(browser, live_server, shared_pdf, org):
    # given a share link, opened by a customer who is not logged in
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    opened = time.monotonic()
    response = page.goto(f"{live_server.url}/d/{shared_pdf.token}")
    assert response.status == 200
    assert page.locator("iframe.viewer__frame").get_attribute("src") == f"/d/{shared_pdf.token}/file"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # fits a phone
    view = DocumentView.objects.get()

    # when they stay N seconds and leave
    page.wait_for_timeout(STAY_SECONDS * 1000)
    page.goto("about:blank")
    stayed = time.monotonic() - opened

    # then the view holds N seconds (never more than the time that passed, give or take the beacon)
    view = wait_for_final_beat(view)
    assert STAY_SECONDS - TOLERANCE <= view.visible_ms / 1000 <= stayed + 1, (view.visible_ms, stayed)
    assert abs(view.seconds - STAY_SECONDS) <= TOLERANCE

    # when a second opening is visible 3 s, hidden 4 s, visible 2 s
    page.goto(f"{live_server.url}/d/{shared_pdf.token}")
    page.wait_for_timeout(3000)
    set_visibility(page, "hidden")
    page.wait_for_timeout(4000)
    set_visibility(page, "visible")
    page.wait_for_timeout(2000)
    page.goto("about:blank")
    context.close()

    # then only the 5 visible seconds count
    second = wait_for_final_beat(DocumentView.objects.order_by("-id").first())
    assert 5 - TOLERANCE <= second.visible_ms / 1000 <= 5 + TOLERANCE, second.visible_ms
    assert DocumentView.objects.count() == 2


def test_the_rep_sees_the_openings_and_records_a_touch_on_a_phone(
    browser, live_server, shared_pdf, org, settings
):
    # given the customer opened the proposal once for 4 seconds (reported in one 5-second beat)
    settings.SALESLOOP_VIEWER_BEAT_SECONDS = 5
    view = services.document_view_open(document=shared_pdf)
    DocumentView.objects.filter(pk=view.pk).update(last_beat_at=view.last_beat_at - dt.timedelta(seconds=4))
    services.document_view_beat(token=shared_pdf.token, view_key=view.view_key, visible_ms=4000)

    # when alice opens the lead on her phone
    page = browser.new_page(viewport=PHONE)
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("用户名").fill("alice")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{live_server.url}/")
    # (the panel's own page: the lead page loads several panels at once, and the test server's one
    # in-memory SQLite connection must not serve concurrent requests)
    page.goto(f"{live_server.url}/leads/{shared_pdf.lead_id}/engagement/")

    # then the panel says how often and how long, with the share link
    stats = page.locator("#lead-engagement .doc-stats")
    stats.wait_for()
    assert "打开 1 次，查看 4 秒" in stats.inner_text()
    assert shared_pdf.token in page.locator("#lead-engagement .share-link").input_value()

    # and she records an answered call with two taps and a button, without a page load
    form = page.locator("#touch-form")
    form.get_by_label("消息", exact=True).check()
    form.get_by_label("是", exact=True).check()
    form.locator("textarea[name=note]").fill("客户回复了微信")
    form.get_by_role("button", name="记录").click()
    page.wait_for_selector("#lead-engagement .notice--success")
    touch = Touch.objects.get()
    assert (touch.kind, touch.direction, touch.responded) == ("message", "outbound", True)
    assert "客户回复了微信" in page.locator("#lead-engagement .touches").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
