"""The check-in page in a real headless Chromium at a phone's size (SPEC C4; issue 6 items 2 and 5):
the network drops between the photo and the submit and the check-in still arrives, once, with its
photo; an upload cut mid-way resumes; a reload keeps the draft; the targets are thumb-sized."""

from __future__ import annotations

import io
import os
import re

import pytest

from salesloop.crm.models import Attachment
from salesloop.engagement.checkin_models import Checkin, EvidenceUpload
from tests.browsing import PHONE, log_in, watch_for_broken_assets
from tests.factories import lead_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CHUNK_PUT = re.compile(r".*/api/v1/checkins/uploads/[0-9a-f-]+\?offset=\d+$")


def noisy_jpeg(path, size=(900, 700)) -> bytes:
    """A photo of a few hundred KB (noise does not compress), so it goes up in several chunks."""
    from PIL import Image

    image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


@pytest.fixture
def phone(browser, live_server, org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN")
    page = context.new_page()
    page.broken = watch_for_broken_assets(page)
    log_in(page, live_server.url, "alice")
    yield page
    context.close()


def fill_checkin(page, text: str) -> None:
    page.locator("label.pick", has_text="拜访").click()
    page.locator("label.pick", has_text="有进展").click()
    page.fill("textarea[name=result_text]", text)


def test_a_checkin_sent_while_offline_arrives_once_with_its_photo(phone, live_server, org, tmp_path):
    page = phone
    lead = lead_make(owner=org.alice, title="星河新能源 MES")
    photo = noisy_jpeg(tmp_path / "现场.jpg")

    # given the rep opens the check-in from the lead page, on her phone
    page.goto(f"{live_server.url}/leads/{lead.pk}/")
    page.locator("a.lead-head__checkin", has_text="签到").click()
    page.wait_for_url(re.compile(r".*/checkins/new\?lead=\d+$"))
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # one column
    # every target is thumb-sized
    small = page.evaluate(
        """() => [...document.querySelectorAll('#checkin-form .pick span, #checkin-form .button,'
              + ' #checkin-form textarea, #checkin-form input[type=text], #checkin-form select')]
            .filter(el => el.offsetParent !== null && el.getBoundingClientRect().height < 44)
            .map(el => el.outerHTML.slice(0, 80))"""
    )
    assert small == []

    # when she takes the photo (it uploads at once), loses the network, and taps 签到
    fill_checkin(page, "见了IT总监，约了下周二演示")
    page.set_input_files("input[name=evidence_site_photo]", str(tmp_path / "现场.jpg"))
    page.wait_for_selector(".evidence-list li[data-state=done]", timeout=20000)
    page.context.set_offline(True)
    page.locator("button.checkin__submit").click()

    # then the page says it will send the check-in later, and nothing has arrived yet
    page.wait_for_selector(".checkin__status:has-text('没有网络')", timeout=10000)
    assert Checkin.objects.count() == 0

    # when the network comes back, the check-in goes out by itself, once, with its photo
    page.context.set_offline(False)
    page.wait_for_url(re.compile(r".*/checkins/\?date=.*"), timeout=20000)
    checkin = Checkin.objects.get()
    assert checkin.result_text == "见了IT总监，约了下周二演示"
    attachment = checkin.evidence.get().attachment
    assert attachment.kind == "site_photo"
    with attachment.file.open("rb") as stored:
        assert stored.read() == photo
    # the daily report (phone-sized too) shows it with its thumbnail, and the draft is gone
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.locator(f"img[src='/checkins/evidence/{checkin.evidence.get().pk}/file']").count() == 1
    assert page.evaluate(f"localStorage.getItem('salesloop.checkin.draft.{org.alice.pk}')") is None
    assert page.broken == []


def test_a_cut_upload_resumes_and_a_reload_keeps_the_draft(phone, live_server, org, tmp_path):
    page = phone
    lead = lead_make(owner=org.alice, title="云启 CRM 替换")
    photo = noisy_jpeg(tmp_path / "签字页.jpg")
    cut = []

    def cut_the_second_chunk(route):
        if len(cut) == 0 and "offset=0" not in route.request.url:
            cut.append(route.request.url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    # given the network drops in the middle of the signature page's upload
    page.route(CHUNK_PUT, cut_the_second_chunk)
    page.goto(f"{live_server.url}/checkins/new?lead={lead.pk}")
    fill_checkin(page, "客户签了字")
    page.set_input_files("input[name=evidence_signature_page]", str(tmp_path / "签字页.jpg"))

    # then the upload resumes where it stopped and completes
    page.wait_for_selector(".evidence-list li[data-state=done]", timeout=30000)
    assert len(cut) == 1
    upload = EvidenceUpload.objects.get()
    assert upload.received == len(photo) and upload.completed_at is not None

    # when the page is reloaded before the submit, what was typed and the photo are still there
    page.reload()
    assert page.input_value("textarea[name=result_text]") == "客户签了字"
    assert page.locator("label.pick input[value=visit]").is_checked()
    page.wait_for_selector(".evidence-list li[data-state=done]")

    # and the check-in arrives with the whole photo
    page.locator("button.checkin__submit").click()
    page.wait_for_url(re.compile(r".*/checkins/\?date=.*"), timeout=20000)
    attachment = Attachment.objects.get(checkin_evidence__checkin=Checkin.objects.get())
    assert attachment.kind == "signature_page"
    with attachment.file.open("rb") as stored:
        assert stored.read() == photo


def test_a_refused_stage_move_keeps_everything_for_the_next_try(phone, live_server, org, tmp_path):
    page = phone
    lead = lead_make(owner=org.alice, title="方案未齐的线索")
    page.goto(f"{live_server.url}/checkins/new?lead={lead.pk}")
    fill_checkin(page, "演示很成功")
    page.select_option("select[name=to_stage]", "solution_demo")
    page.locator("button.checkin__submit").click()

    # the gate says what is missing, next to the move; nothing was saved; the text is still there
    page.wait_for_selector("[data-field=to_stage] .js-error", timeout=10000)
    assert "痛点清单" in page.inner_text("[data-field=to_stage]") or "pain" in page.inner_text(
        "[data-field=to_stage]"
    )
    assert Checkin.objects.count() == 0
    assert page.input_value("textarea[name=result_text]") == "演示很成功"

    # without the move, the same check-in goes through
    page.select_option("select[name=to_stage]", "")
    page.locator("button.checkin__submit").click()
    page.wait_for_url(re.compile(r".*/checkins/\?date=.*"), timeout=20000)
    assert Checkin.objects.get().stage_move_id is None


def test_a_reload_in_the_middle_of_an_upload_resumes_it_from_the_phone(phone, live_server, org, tmp_path):
    page = phone
    lead = lead_make(owner=org.alice, title="宁德储能项目")
    photo = noisy_jpeg(tmp_path / "现场.jpg")

    # given the line dies after the first chunk of the photo
    def only_the_first_chunk(route):
        if route.request.url.endswith("offset=0"):
            route.continue_()
        else:
            route.abort("internetdisconnected")

    page.route(CHUNK_PUT, only_the_first_chunk)
    page.goto(f"{live_server.url}/checkins/new?lead={lead.pk}")
    fill_checkin(page, "现场勘察完成")
    page.set_input_files("input[name=evidence_site_photo]", str(tmp_path / "现场.jpg"))
    page.wait_for_selector(".checkin__status:has-text('续传')", timeout=20000)
    upload = EvidenceUpload.objects.get()
    assert 0 < upload.received < len(photo)

    # when the rep reloads the page once the line is back
    page.unroute(CHUNK_PUT)
    page.reload()

    # then the photo (kept in the browser) finishes uploading from where it stopped, the text is back
    page.wait_for_selector(".evidence-list li[data-state=done]", timeout=30000)
    assert page.input_value("textarea[name=result_text]") == "现场勘察完成"
    upload.refresh_from_db()
    assert upload.received == len(photo) and upload.completed_at is not None

    # and the check-in arrives with the whole photo
    page.locator("button.checkin__submit").click()
    page.wait_for_url(re.compile(r".*/checkins/\?date=.*"), timeout=20000)
    attachment = Checkin.objects.get().evidence.get().attachment
    with attachment.file.open("rb") as stored:
        assert stored.read() == photo
