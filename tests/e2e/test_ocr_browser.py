"""OCR beside the evidence in a real headless Chromium, on a phone (issue 6 items 3 and 5): the rep
uploads a photo of a contract's signature page on the lead page; the text is read (the immediate task
backend reads it during the upload), and the facts, the signed verdict and — because the page names
another company than the lead's customer — the red mismatch flag appear beside the attachment; the
read text opens on a tap. Then the evidence search finds it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from salesloop.demo import evidence_images as images
from tests.browsing import PHONE, log_in, watch_for_broken_assets
from tests.factories import customer_make, lead_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_signature_page_photo_uploaded_on_a_phone_shows_its_facts_and_the_mismatch(
    browser, live_server, org, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    lead = lead_make(
        owner=org.alice, title="百川 CRM 项目", customer=customer_make(name="北京百川医疗器械有限公司")
    )
    photo = Path(tempfile.mkdtemp(dir=tmp_path)) / "签署页.jpg"
    photo.write_bytes(images.page_photo(images.signature_page()))

    page = browser.new_page(viewport=PHONE)
    broken = watch_for_broken_assets(page)
    log_in(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/leads/{lead.pk}/")
    page.wait_for_selector("#lead-engagement")
    page.get_by_text("添加文件或链接").click()
    form = page.locator("#attachment-form")
    form.locator("input[name=kind]").fill("signature_page")
    form.locator("input[type=file]").set_input_files(str(photo))
    form.get_by_role("button", name="添加").click()

    ocr = page.locator("#lead-engagement .ocr--done")
    ocr.wait_for(timeout=60_000)
    assert "公司与客户不符" in ocr.locator(".ocr__mismatch").inner_text()
    assert page.locator(".ocr__mismatch").evaluate("e => getComputedStyle(e).color") == "rgb(179, 38, 30)"
    chips = ocr.locator(".ocr__fact").all_inner_texts()
    assert any("杭州星河新能源科技有限公司" in chip for chip in chips)
    assert any("¥128000.00" in chip for chip in chips)
    assert "看起来已签署" in ocr.locator(".ocr__signed").inner_text()
    text = ocr.locator(".ocr__text pre")
    assert not text.is_visible()
    ocr.locator(".ocr__text summary").click()
    assert "合同签署页" in text.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # fits a phone

    page.goto(f"{live_server.url}/evidence/search?q=星河新能源")
    assert page.locator(".evidence-search__hits li").count() == 1
    assert "百川 CRM 项目" in page.locator(".evidence-search__hits").inner_text()
    assert broken == []
