"""OCR of evidence attachments (issue 6 items 3 and 5), end to end with the real engine: images of
Chinese text rendered here with the Noto CJK font are attached through the attachment service, the
background task (immediate backend) reads them, and the facts, the signed verdict, the company check,
the search, the API and the lead page are checked — with the permissions of each role.

rapidocr takes 1–3 s per page on these cores: each distinct image is read by the real engine once per
test session (memoised by its pixels), however many tests attach it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from salesloop.core import clock
from salesloop.core import ocr as core_ocr
from salesloop.core.models import AuditEntry
from salesloop.demo import evidence_images as images
from salesloop.engagement import services
from salesloop.engagement.ocr import services as ocr_services
from salesloop.engagement.ocr.facts import plain
from salesloop.engagement.ocr.models import EvidenceText, OcrStatus
from tests.engagement.conftest import pdf_bytes
from tests.factories import customer_make, lead_make

HTMX = {"HX-Request": "true"}
T0 = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai
CUSTOMER = "杭州星河新能源科技有限公司"
FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")

_READ: dict[str, list[core_ocr.OcrLine]] = {}


@pytest.fixture(autouse=True)
def _ocr_once_per_image(monkeypatch):
    """The real engine, once per distinct image in the session."""
    real = core_ocr.ocr_image_read

    def read(image):
        key = hashlib.sha256(image.tobytes() + repr(image.size).encode()).hexdigest()
        if key not in _READ:
            _READ[key] = real(image)
        return list(_READ[key])

    monkeypatch.setattr(ocr_services, "ocr_image_read", read)


@pytest.fixture(scope="module")
def pages() -> dict[str, bytes]:
    assert FONT.exists(), "install fonts-noto-cjk (`make test` does)"
    return {
        "signed": images.signature_page(),
        "unsigned": images.signature_page(signer="", seal=False),
        "minutes_pdf": images.scanned_pdf([images.minutes_page()]),
    }


@pytest.fixture
def lead(org):
    clock.set_now(T0)
    return lead_make(owner=org.alice, title="星河 CRM 项目", customer=customer_make(name=CUSTOMER))


def attach(user, lead, kind: str, content: bytes, name: str = "签署页.png", content_type: str = "image/png"):
    upload = SimpleUploadedFile(name, content, content_type=content_type)
    attachment = services.attachment_add(actor=user, lead=lead, kind=kind, file=upload)
    return attachment, EvidenceText.objects.get(pk=attachment.pk)


def fact_values(row: EvidenceText, kind: str) -> list[str]:
    return [f["value"] for f in row.facts[kind]]


class TestSignaturePage:
    def test_the_key_facts_of_a_signed_contract_page_are_recovered(self, org, lead, pages):
        _, row = attach(org.alice, lead, "signature_page", pages["signed"])
        assert row.status == OcrStatus.DONE and row.engine.startswith("rapidocr")
        assert CUSTOMER in fact_values(row, "companies")
        assert "上海云启软件有限公司" in fact_values(row, "companies")
        assert fact_values(row, "amounts") == ["128000.00"]  # 人民币12.8万元
        assert fact_values(row, "dates") == ["2026-11-20"]
        assert fact_values(row, "phones") == ["+8657187654321"]
        for kind in ("companies", "amounts", "dates", "phones"):
            for fact in row.facts[kind]:
                assert 0.8 <= fact["confidence"] <= 1
                assert fact["text"] in plain(row.lines[fact["line"]]["text"])  # its source line
        assert "合同签署页" in row.text and row.pages == 1

    def test_a_sealed_signed_and_dated_page_looks_signed_with_its_reasons(self, org, lead, pages):
        _, row = attach(org.alice, lead, "signature_page", pages["signed"])
        assert row.signed is True
        why = row.signed_explanation
        assert why["kind"] == "evidence_signed" and why["points"] >= why["threshold"]
        cues = {r["cue"] for r in why["reasons"]}
        assert {"red_seal", "signature_filled", "date_filled"} <= cues
        assert why["seal"]["aspect"] == pytest.approx(1, abs=0.15)
        assert row.company_mismatch is False
        assert CUSTOMER in row.mismatch_explanation["message"]

    def test_a_page_without_seal_with_blank_signature_and_date_does_not_look_signed(self, org, lead, pages):
        _, row = attach(org.alice, lead, "signature_page", pages["unsigned"])
        assert row.signed is False
        cues = {r["cue"] for r in row.signed_explanation["reasons"]}
        assert "red_seal" not in cues and "signature_filled" not in cues
        assert {"signature_blank", "date_blank"} <= cues

    def test_a_signature_page_naming_another_company_is_flagged_naming_both(self, org, pages):
        clock.set_now(T0)
        other = lead_make(owner=org.alice, customer=customer_make(name="北京百川医疗器械有限公司"))
        _, row = attach(org.alice, other, "signature_page", pages["signed"])
        assert row.company_mismatch is True
        why = row.mismatch_explanation
        assert why["kind"] == "evidence_company_mismatch" and why["customer"] == "北京百川医疗器械有限公司"
        assert CUSTOMER in why["message"] and "北京百川医疗器械有限公司" in why["message"]

    def test_other_kinds_of_evidence_are_not_checked_for_the_company(self, org, pages):
        clock.set_now(T0)
        other = lead_make(owner=org.alice, customer=customer_make(name="北京百川医疗器械有限公司"))
        _, row = attach(org.alice, other, "site_photo", pages["signed"])
        assert row.company_mismatch is False and row.mismatch_explanation is None
        assert row.signed is True  # the page itself still says 签字/盖章: it is judged

    def test_reading_the_same_file_again_derives_the_same_result(self, org, lead, pages):
        _, first = attach(org.alice, lead, "signature_page", pages["signed"])
        EvidenceText.objects.filter(pk=first.pk).update(status=OcrStatus.PENDING)
        again = ocr_services.evidence_text_read(attachment_id=first.pk)
        fields = ("text", "lines", "facts", "signed", "signed_explanation", "company_mismatch")
        assert all(getattr(again, f) == getattr(first, f) for f in fields)


class TestFiles:
    def test_a_scanned_pdf_page_is_read_and_a_date_without_year_takes_this_year(self, org, lead, pages):
        _, row = attach(
            org.alice, lead, "meeting_minutes", pages["minutes_pdf"], "纪要.pdf", "application/pdf"
        )
        assert row.status == OcrStatus.DONE and row.pages == 1
        assert "会议纪要" in row.text
        assert fact_values(row, "amounts") == ["12800.00"]  # ¥12,800
        assert fact_values(row, "dates") == ["2026-11-26"]  # 11月26日, attached 2026-11-28
        assert fact_values(row, "phones") == ["+8613905712345"]
        assert row.signed is None  # minutes are not a signature page

    def test_a_text_pdf_is_rendered_and_read_like_a_scan(self, org, lead):
        attachment = services.attachment_add(
            actor=org.alice,
            lead=lead,
            kind="proposal",
            file=SimpleUploadedFile("方案.pdf", pdf_bytes("Proposal 2026"), content_type="application/pdf"),
        )
        row = EvidenceText.objects.get(pk=attachment.pk)
        assert row.status == OcrStatus.DONE and row.pages == 1
        assert "Proposal 2026" in row.text

    def test_a_damaged_pdf_fails_with_the_reason(self, org, lead):
        broken = SimpleUploadedFile("坏.pdf", b"%PDF-1.4\n" + b"garbage" * 50, content_type="application/pdf")
        attachment = services.attachment_add(actor=org.alice, lead=lead, kind="proposal", file=broken)
        row = EvidenceText.objects.get(pk=attachment.pk)
        assert row.status == OcrStatus.FAILED and "cannot be opened" in row.reason

    def test_a_link_gets_no_ocr(self, org, lead):
        attachment = services.attachment_add(
            actor=org.alice, lead=lead, kind="deck", url="https://example.com/d"
        )
        assert not EvidenceText.objects.filter(pk=attachment.pk).exists()

    def test_an_unreadable_image_fails_with_the_reason_and_can_be_retried(self, org, lead, api_as):
        broken = b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10
        attachment, row = attach(org.alice, lead, "site_photo", broken, "现场.png")
        assert row.status == OcrStatus.FAILED and "cannot be opened" in row.reason
        response = api_as(org.alice).post(f"/api/v1/attachments/{attachment.pk}/ocr/retry")
        assert response.status_code == 202, response.content
        assert response.json()["attempts"] == 2 and response.json()["status"] == "failed"
        assert AuditEntry.objects.filter(action="evidence_ocr.retry", target_id=str(attachment.pk)).exists()

    def test_a_reading_that_succeeded_is_not_retried(self, org, lead, pages, api_as):
        attachment, _ = attach(org.alice, lead, "signature_page", pages["unsigned"])
        response = api_as(org.alice).post(f"/api/v1/attachments/{attachment.pk}/ocr/retry")
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][-1] == "status"


class TestPermissions:
    @pytest.fixture
    def evidence(self, org, lead, pages):
        attachment, _ = attach(org.alice, lead, "signature_page", pages["signed"])
        return attachment

    @pytest.mark.parametrize(
        ("persona", "status"),
        [("alice", 200), ("carol", 200), ("director", 200), ("bob", 404), ("erin", 404), ("dave", 404)],
    )
    def test_the_ocr_result_is_seen_by_those_who_see_the_lead_and_404_for_others(
        self, org, evidence, api_as, persona, status
    ):
        response = api_as(getattr(org, persona)).get(f"/api/v1/attachments/{evidence.pk}/ocr")
        assert response.status_code == status

    def test_bob_cannot_retry_or_load_the_fragment_of_alices_evidence(self, org, evidence, api_as, client):
        assert api_as(org.bob).post(f"/api/v1/attachments/{evidence.pk}/ocr/retry").status_code == 404
        client.force_login(org.bob)
        url = f"/leads/{evidence.lead_id}/engagement/attachments/{evidence.pk}/ocr"
        assert client.get(url).status_code == 404
        assert client.post(url + "/retry").status_code == 404

    def test_phone_numbers_read_are_masked_for_a_director_and_shown_to_the_owner(self, org, evidence, api_as):
        owner = api_as(org.alice).get(f"/api/v1/attachments/{evidence.pk}/ocr").json()
        director = api_as(org.director).get(f"/api/v1/attachments/{evidence.pk}/ocr").json()
        assert owner["facts"]["phones"][0]["value"] == "+8657187654321"
        assert director["facts"]["phones"][0]["value"] == "571****4321"
        assert "8765 4321" in owner["text"] and "8765 4321" not in director["text"]
        assert all("8765 4321" not in line["text"] for line in director["lines"])


class TestSearch:
    @pytest.fixture
    def corpus(self, org, pages):
        clock.set_now(T0)
        alices = lead_make(owner=org.alice, customer=customer_make(name=CUSTOMER))
        bobs = lead_make(owner=org.bob, customer=customer_make(name="北京百川医疗器械有限公司"))
        a, _ = attach(org.alice, alices, "signature_page", pages["signed"])
        b, _ = attach(org.bob, bobs, "signature_page", pages["unsigned"])
        return a, b

    def ids(self, response) -> list[int]:
        assert response.status_code == 200, response.content
        return [item["attachment_id"] for item in response.json()["items"]]

    def test_a_rep_finds_only_their_own_evidence(self, org, corpus, api_as):
        a, b = corpus
        assert self.ids(api_as(org.alice).get("/api/v1/evidence/search", q="云启软件")) == [a.pk]
        assert self.ids(api_as(org.bob).get("/api/v1/evidence/search", q="云启软件")) == [b.pk]
        assert self.ids(api_as(org.erin).get("/api/v1/evidence/search", q="云启软件")) == []
        assert self.ids(api_as(org.director).get("/api/v1/evidence/search", q="云启软件")) == [b.pk, a.pk]

    def test_the_query_matches_ignoring_spaces_and_full_width_characters(self, org, corpus, api_as):
        a, _ = corpus
        hit = api_as(org.alice).get("/api/v1/evidence/search", q="人民币 12.8 万元")
        assert self.ids(hit) == [a.pk]
        assert "12.8万元" in hit.json()["items"][0]["snippet"]
        assert self.ids(api_as(org.alice).get("/api/v1/evidence/search", q="ＣＲＭ签署页")) == []
        assert self.ids(api_as(org.alice).get("/api/v1/evidence/search", q="合同签署页")) == [a.pk]

    def test_an_empty_query_is_a_422_naming_q(self, org, api_as):
        response = api_as(org.alice).get("/api/v1/evidence/search", q=" ")
        assert response.status_code == 422 and response.json()["detail"][0]["loc"][-1] == "q"

    def test_pages_follow_the_cursor_in_a_fixed_number_of_queries(
        self, org, corpus, api_as, django_assert_num_queries
    ):
        client = api_as(org.director)
        client.get("/api/v1/evidence/search", q="签署页")  # warm up
        with django_assert_num_queries(2):  # the token, the page
            first = client.get("/api/v1/evidence/search", q="签署页", limit=1)
        assert len(first.json()["items"]) == 1 and first.json()["next_cursor"]
        with django_assert_num_queries(2):
            second = client.get(
                "/api/v1/evidence/search", q="签署页", limit=1, cursor=first.json()["next_cursor"]
            )
        assert self.ids(second) == [corpus[0].pk] and second.json()["next_cursor"] is None

    def test_the_search_page_lists_hits_and_keeps_the_query(self, org, corpus, client):
        client.force_login(org.alice)
        html = client.get("/evidence/search", {"q": "云启软件"}).content.decode()
        assert 'value="云启软件"' in html
        assert f'data-attachment="{corpus[0].pk}"' in html and f'data-attachment="{corpus[1].pk}"' not in html
        assert "看起来已签署" in html


class TestLeadPage:
    def test_the_facts_verdict_and_mismatch_show_beside_each_attachment_in_fixed_queries(
        self, org, pages, client, django_assert_num_queries
    ):
        clock.set_now(T0)
        lead = lead_make(owner=org.alice, customer=customer_make(name="北京百川医疗器械有限公司"))
        attach(org.alice, lead, "signature_page", pages["signed"])
        client.force_login(org.alice)
        client.get(f"/leads/{lead.pk}/engagement/", headers=HTMX)
        with django_assert_num_queries(11) as captured:
            html = client.get(f"/leads/{lead.pk}/engagement/", headers=HTMX).content.decode()
        attach(org.alice, lead, "signature_page", pages["unsigned"])
        attach(org.alice, lead, "meeting_minutes", pages["minutes_pdf"], "纪要.pdf", "application/pdf")
        with django_assert_num_queries(len(captured.captured_queries)):
            more = client.get(f"/leads/{lead.pk}/engagement/", headers=HTMX).content.decode()
        assert 'data-fact="amount"' in html and "¥128000.00" in html
        assert "公司与客户不符" in html and 'class="ocr__mismatch"' in html
        assert "而线索的客户是「北京百川医疗器械有限公司」" in html and f"「{CUSTOMER}」" in html
        assert "看起来已签署" in html and "红色印章" in html
        assert "看起来未签署" in more and "¥12800.00" in more

    def test_a_pending_reading_shows_a_progress_bar_that_polls_its_fragment(
        self, org, lead, pages, client, settings
    ):
        settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
        attachment, row = attach(org.alice, lead, "signature_page", pages["signed"])
        assert row.status == OcrStatus.PENDING
        client.force_login(org.alice)
        html = client.get(f"/leads/{lead.pk}/engagement/", headers=HTMX).content.decode()
        fragment_url = f"/leads/{lead.pk}/engagement/attachments/{attachment.pk}/ocr"
        assert "<progress" in html and f'hx-get="{fragment_url}"' in html
        ocr_services.evidence_text_read(attachment_id=attachment.pk)
        done = client.get(fragment_url, headers=HTMX).content.decode()
        assert "<progress" not in done and 'data-ocr-status="done"' in done


class TestSearchPageInput:
    @pytest.mark.parametrize(
        ("params", "field_text"), [({"q": "星河\x00"}, "NUL"), ({"q": "星河", "cursor": "!!"}, "")]
    )
    def test_bad_input_re_renders_the_form_with_the_error_and_the_query_kept(
        self, org, client, params, field_text
    ):
        client.force_login(org.alice)
        response = client.get("/evidence/search", params)
        html = response.content.decode()
        assert response.status_code == 422
        assert 'role="alert"' in html and field_text in html
        assert 'name="q" value="星河' in html
