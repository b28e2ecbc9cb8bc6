"""C1.1 展会名片: a card photo → OCR in a background task → a draft a person confirms → a lead.

The photo is a real business card rendered with the Noto CJK font and read by the real RapidOCR
engine. OCR takes seconds, so the engine reads each distinct image once per module: `ocr_once`
memoises the real function by the image's hash (it is a pure function of the bytes), and every
other step — storage, the task, intake, the pages, the API — runs for real in every test.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import BOUNDARY, encode_multipart
from django_tasks import task_backends
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from salesloop.core.audit import AuditEntry
from salesloop.core.models import PersonalDataAccess
from salesloop.crm.models import Lead
from salesloop.intake import cards
from salesloop.intake.cards import OcrLine, card_confirm, card_fields_extract, card_ocr_retry, card_upload
from salesloop.intake.models import InboundEvent, Source
from salesloop.intake.services import source_create
from salesloop.intake.signing import signature_for
from tests.factories import contact_make, customer_make, lead_make
from tests.intake.conftest import SECRET

pytestmark = pytest.mark.django_db

FONTS = Path("/usr/share/fonts/opentype/noto")
# Equal to the test client's MULTIPART_CONTENT but another object, so the client sends our bytes as they are.
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
NAME, TITLE, COMPANY = "王建国", "销售总监", "杭州星河新能源科技有限公司"
MOBILE_E164, EMAIL = "+8613905712345", "wangjg@xinghe-ev.com"
ADDRESS = "杭州市西湖区文三路478号华星时代广场A座12楼"


# --- the card --------------------------------------------------------------------------------


def card_render(*, blank: bool = False) -> bytes:
    """A 90×54 mm card at ~250 dpi, photographed: tilted 2°, on a desk, slightly soft."""
    bold = ImageFont.truetype(str(FONTS / "NotoSansCJK-Bold.ttc"), 34, index=2)
    big = ImageFont.truetype(str(FONTS / "NotoSansCJK-Bold.ttc"), 64, index=2)
    regular = ImageFont.truetype(str(FONTS / "NotoSansCJK-Regular.ttc"), 28, index=2)
    title_font = ImageFont.truetype(str(FONTS / "NotoSansCJK-Regular.ttc"), 32, index=2)
    card = Image.new("RGB", (900, 520), (250, 248, 242))
    draw = ImageDraw.Draw(card)
    draw.rectangle((0, 0, 900, 14), fill=(20, 80, 160))
    if not blank:
        draw.text((60, 50), COMPANY, font=bold, fill=(20, 80, 160))
        draw.text((60, 150), NAME, font=big, fill=(30, 30, 30))
        draw.text((300, 175), TITLE, font=title_font, fill=(80, 80, 80))
        for row, text in enumerate(
            (
                "手机：139 0571 2345",
                "电话：0571-8765 4321",
                f"邮箱：{EMAIL}",
                "地址：杭州市西湖区文三路 478 号华星时代广场 A 座 12 楼",
            )
        ):
            draw.text((60, 290 + 45 * row), text, font=regular, fill=(40, 40, 40))
    desk = Image.new("RGB", (1060, 700), (118, 108, 98))
    desk.paste(
        card.rotate(2, expand=True, fillcolor=(118, 108, 98), resample=Image.Resampling.BICUBIC), (70, 70)
    )
    photo = io.BytesIO()
    desk.filter(ImageFilter.GaussianBlur(0.7)).save(photo, "PNG", optimize=True)
    return photo.getvalue()


@pytest.fixture(scope="module")
def card_png() -> bytes:
    return card_render()


@pytest.fixture(scope="module")
def blank_png() -> bytes:
    return card_render(blank=True)


_OCR_MEMO: dict[str, list[OcrLine]] = {}
_OCR_RUNS: list[str] = []


@pytest.fixture(autouse=True)
def ocr_once(monkeypatch):
    real = cards.card_text_read

    def read(image_bytes: bytes) -> list[OcrLine]:
        key = hashlib.sha256(image_bytes).hexdigest()
        if key not in _OCR_MEMO:
            _OCR_MEMO[key] = real(image_bytes)
        _OCR_RUNS.append(key)
        return list(_OCR_MEMO[key])

    monkeypatch.setattr(cards, "card_text_read", read)
    _OCR_RUNS.clear()


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def queued(settings):
    """A queue nobody works yet: the card waits for OCR as it does in production."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    return settings


@pytest.fixture
def show(org):
    return source_create(actor=None, kind="card", name="2026 上海工博会", secret=SECRET)


def signed_photo(client, source, body: bytes, content_type: str = "image/png", *, secret: str = SECRET):
    ts = str(int(time.time()))
    return client.post(
        f"/hooks/{source.slug}",
        body,
        content_type=content_type,
        headers={"X-Salesloop-Timestamp": ts, "X-Salesloop-Signature": signature_for(secret, ts, body)},
    )


def upload(user, source, image: bytes) -> InboundEvent:
    return card_upload(actor=user, source=source, image_bytes=image, content_type="image/png")


def confirm(user, event, **changes):
    fields = {
        "name": NAME,
        "company": COMPANY,
        "title": TITLE,
        "phone": MOBILE_E164,
        "email": EMAIL,
        "address": ADDRESS,
    }
    return card_confirm(actor=user, event=event, **{**fields, **changes})


# --- the signed hook -------------------------------------------------------------------------


class TestHook:
    def test_a_signed_photo_becomes_a_draft_that_ocr_fills_in(self, client, show, card_png, media):
        # when a scanner app posts the photo itself, signed over the raw bytes
        response = signed_photo(client, show, card_png)
        # then it is accepted as a draft, without a lead
        assert response.status_code == 202, response.content
        answer = response.json()
        assert (answer["status"], answer["lead_id"]) == ("draft", None)
        event = InboundEvent.objects.get(pk=answer["event_id"])
        sha = hashlib.sha256(card_png).hexdigest()
        assert event.external_id == sha
        assert json.loads(event.body) == {
            "card_id": sha,
            "file": f"cards/{sha}.png",
            "content_type": "image/png",
            "bytes": len(card_png),
        }
        assert (media / "cards" / f"{sha}.png").read_bytes() == card_png
        # and the OCR task (run inline by the test backend) proposed the fields, with its reasons
        draft = event.normalised["draft"]
        assert draft["name"] == NAME
        assert draft["company"] == COMPANY
        assert draft["title"] == TITLE
        assert draft["phone"] == MOBILE_E164  # the mobile, not the landline beside it
        assert draft["email"] == EMAIL
        assert draft["city"] == "杭州"
        assert draft["address"] == ADDRESS
        assert "common surname" in event.normalised["why"]["name"]
        assert {p["kind"] for p in event.normalised["phones"]} == {"mobile", "landline"}
        lines = event.normalised["ocr_lines"]
        assert {line["text"] for line in lines} >= {NAME, TITLE, COMPANY}
        assert all(len(line["box"]) == 4 and 0 < line["score"] <= 1 for line in lines)
        assert event.status == "draft" and not Lead.objects.exists()

    def test_the_same_photo_again_is_the_same_card(self, client, show, card_png, media):
        first = signed_photo(client, show, card_png).json()
        again = signed_photo(client, show, card_png)
        assert again.status_code == 202
        assert again.json() == first
        assert InboundEvent.objects.count() == 1
        assert len(list((media / "cards").iterdir())) == 1
        assert len(_OCR_RUNS) == 1  # the replay asked for no second OCR

    def test_a_multipart_photo_is_signed_over_the_raw_body_and_is_the_same_card(self, client, show, card_png):
        raw = signed_photo(client, show, card_png).json()
        body = encode_multipart(BOUNDARY, {"photo": SimpleUploadedFile("card.png", card_png, "image/png")})
        response = signed_photo(client, show, body, MULTIPART)
        assert response.status_code == 202, response.content
        assert response.json()["event_id"] == raw["event_id"]  # content-addressed

    def test_a_replay_after_confirmation_answers_the_lead(self, client, show, card_png, org):
        first = signed_photo(client, show, card_png).json()
        confirm(org.admin, InboundEvent.objects.get(pk=first["event_id"]))
        again = signed_photo(client, show, card_png)
        assert again.status_code == 200
        assert again.json()["status"] == "ignored"
        assert again.json()["lead_id"] == Lead.objects.get().pk

    @pytest.mark.parametrize(
        ("body", "content_type", "status"),
        [
            (b"%PDF-1.4 not a photo", "image/png", 422),
            ("truncated", "image/png", 422),  # the first 2 KB of a real photo
            (b'{"name": "x"}', "application/json", 415),
            (b"hello", "text/plain", 415),
            ("gif", "image/png", 415),  # an image, but a GIF
        ],
    )
    def test_what_is_not_a_card_photo_is_refused_and_nothing_is_stored(
        self, client, show, media, body, content_type, status
    ):
        if body == "gif":
            gif = io.BytesIO()
            Image.new("RGB", (40, 20), "white").save(gif, "GIF")
            body = gif.getvalue()
        elif body == "truncated":
            body = card_render()[:2048]
        response = signed_photo(client, show, body, content_type)
        assert response.status_code == status, response.content
        assert response.json()["detail"]
        assert not InboundEvent.objects.exists()
        assert not (media / "cards").exists()

    def test_an_empty_photo_is_refused(self):
        with pytest.raises(cards.CardImageRefused, match="empty") as refused:
            cards.card_image_check(b"", "image/jpeg")
        assert refused.value.status == 422

    def test_multipart_without_a_photo_is_422(self, client, show):
        body = encode_multipart(BOUNDARY, {"note": "no photo"})
        response = signed_photo(client, show, body, MULTIPART)
        assert response.status_code == 422
        assert response.json()["field"] == "photo"

    def test_a_bad_signature_is_401_and_nothing_is_stored(self, client, show, card_png, media):
        response = signed_photo(client, show, card_png, secret="wrong-secret-wrong-secret")
        assert response.status_code == 401
        assert not InboundEvent.objects.exists()
        assert not (media / "cards").exists()
        assert _OCR_RUNS == []


# --- confirmation ----------------------------------------------------------------------------


class TestConfirm:
    def test_confirming_creates_the_lead_through_the_normal_intake_path(self, show, card_png, org):
        draft = upload(org.alice, show, card_png)
        # when alice confirms what OCR read, correcting the title
        confirmed = confirm(org.alice, draft, title="华东区销售总监")
        # then a second, processed event carries her confirmation, and it made the lead
        lead = Lead.objects.select_related("customer", "contact", "region").get()
        assert (lead.source, lead.customer.name) == ("card", COMPANY)
        assert (lead.contact.name, lead.contact.phone, lead.contact.title) == (
            NAME,
            MOBILE_E164,
            "华东区销售总监",
        )
        assert lead.contact.email == EMAIL
        assert lead.region == org.east  # a Hangzhou mobile: 浙江 is in 华东
        assert lead.owner == org.alice  # a rep's own card is her own lead
        confirmation = InboundEvent.objects.get(pk=confirmed.normalised["confirmed_event_id"])
        assert confirmation.external_id == f"{draft.external_id}:confirmed"
        assert (confirmation.status, confirmation.lead_id, confirmation.created_by) == (
            "created",
            lead.pk,
            org.alice,
        )
        # and the draft's raw body is untouched; it links to the lead and records who corrected what
        assert confirmed.body == draft.body
        assert (confirmed.status, confirmed.lead_id) == ("ignored", lead.pk)
        assert confirmed.normalised["confirmed"]["by"] == org.alice.pk
        assert confirmed.normalised["confirmed"]["corrected"] == ["title"]
        assert confirmed.normalised["draft"]["title"] == TITLE  # what OCR read stays beside it
        assert AuditEntry.objects.filter(action="card.confirm", target_id=str(draft.pk)).exists()

    def test_a_known_person_becomes_a_touch_on_their_open_lead(self, show, card_png, org):
        contact = contact_make(customer_make("33", name=COMPANY), phone=MOBILE_E164, name=NAME)
        known = lead_make(customer=contact.customer, contact=contact, owner=org.bob)
        confirmed = confirm(org.alice, upload(org.alice, show, card_png))
        assert confirmed.lead_id == known.pk
        assert Lead.objects.count() == 1
        assert InboundEvent.objects.get(pk=confirmed.normalised["confirmed_event_id"]).status == "touch"

    def test_a_refused_confirmation_leaves_the_draft_to_correct(self, show, card_png, org):
        draft = upload(org.alice, show, card_png)
        with pytest.raises(ValidationError) as refused:
            confirm(org.alice, draft, phone="139 0571 234")  # a digit short
        assert "phone" in refused.value.message_dict
        draft.refresh_from_db()
        assert (draft.status, Lead.objects.count(), InboundEvent.objects.count()) == ("draft", 0, 1)
        # then the corrected number goes through
        assert confirm(org.alice, draft).lead_id == Lead.objects.get().pk

    def test_a_name_and_a_way_to_reach_the_person_are_required(self, show, card_png, org):
        draft = upload(org.alice, show, card_png)
        with pytest.raises(ValidationError) as refused:
            confirm(org.alice, draft, name=" ", phone="", email="")
        assert set(refused.value.message_dict) == {"name", "phone"}

    def test_a_card_is_confirmed_once(self, show, card_png, org):
        draft = upload(org.alice, show, card_png)
        confirm(org.alice, draft)
        with pytest.raises(ValidationError, match="confirmed already"):
            confirm(org.alice, draft)
        assert Lead.objects.count() == 1

    def test_a_rep_confirms_only_the_cards_they_uploaded(self, show, card_png, org):
        draft = upload(org.alice, show, card_png)
        with pytest.raises(PermissionDenied):
            confirm(org.bob, draft)
        with pytest.raises(PermissionDenied):
            confirm(org.dave, draft)  # a manager of another region
        assert confirm(org.carol, draft).lead_id  # alice's manager may


# --- OCR failure -----------------------------------------------------------------------------


class TestOcrFailure:
    def test_a_photo_without_text_fails_with_the_reason_and_can_be_typed_in(self, show, blank_png, org):
        event = upload(org.alice, show, blank_png)
        assert event.status == "failed"
        assert "no text found" in event.error
        assert event.normalised["ocr_lines"] == []
        # the person types the details from the card instead
        confirmed = confirm(org.alice, event)
        assert (confirmed.status, confirmed.error) == ("ignored", "")
        assert Lead.objects.get().contact.name == NAME

    def test_a_card_waits_for_the_worker_and_a_missing_photo_fails(
        self, client, show, card_png, org, media, queued
    ):
        # given a queue that a worker has not reached yet
        event = upload(org.alice, show, card_png)
        assert cards.card_ocr_pending(event)
        assert len(task_backends["default"].results) == 1  # enqueued once, with the event
        client.force_login(org.alice)
        assert 'hx-trigger="every 3s"' in client.get(f"/intake/cards/{event.pk}/").content.decode()
        # when the worker runs but the photo is gone
        stored = media / json.loads(event.body)["file"]
        stored.unlink()
        failed = cards.card_read(event_id=event.pk)
        assert (failed.status, failed.error) == ("failed", "the stored photo is missing")
        # then, with the photo back, a retry reads it
        stored.write_bytes(card_png)
        queued.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
        again = card_ocr_retry(actor=org.alice, event=failed)
        assert again.status == "draft" and again.normalised["draft"]["name"] == NAME
        assert again.attempts == 2
        assert "hx-trigger" not in client.get(f"/intake/cards/{event.pk}/").content.decode()
        # and the section htmx polls says so, with a link to reload what OCR proposes
        polled = client.get(f"/intake/cards/{event.pk}/?polled=1").content.decode()
        assert f'href="/intake/cards/{event.pk}/"' in polled

    def test_a_read_draft_is_not_read_again(self, show, card_png, org):
        with pytest.raises(ValidationError):
            card_ocr_retry(actor=org.alice, event=upload(org.alice, show, card_png))


# --- reading a card (no OCR: lines as the engine returns them) -------------------------------


def lines(*rows: tuple[str, int]) -> list[OcrLine]:
    """(text, text height in px) top to bottom."""
    found, top = [], 20
    for text, height in rows:
        found.append(
            OcrLine(
                text=text, box=[[20, top], [600, top], [600, top + height], [20, top + height]], score=0.99
            )
        )
        top += height + 10
    return found


class TestReading:
    def test_name_and_title_on_one_line(self):
        draft = card_fields_extract(
            lines(("深圳市前海微众数据服务有限公司", 30), ("李娜 采购经理", 40), ("M: 186-2345-6789", 24))
        )
        assert (draft.name, draft.title, draft.company) == (
            "李娜",
            "采购经理",
            "深圳市前海微众数据服务有限公司",
        )
        assert draft.phone == "+8618623456789"

    def test_a_name_run_into_its_title(self):
        draft = card_fields_extract(
            lines(("北京华信集团", 30), ("张伟高级工程师", 40), ("Tel:010-6278 1234", 24))
        )
        assert (draft.name, draft.title) == ("张伟", "高级工程师")
        assert (draft.phone, draft.city) == ("+861062781234", "")  # a landline says no city

    def test_the_tallest_surname_line_is_the_name_and_a_title_word_is_not(self):
        draft = card_fields_extract(
            lines(("上海联影医疗科技股份有限公司", 28), ("高级工程师", 30), ("欧阳 晓", 60), ("杭州", 20))
        )
        assert (draft.name, draft.title) == ("欧阳晓", "高级工程师")

    def test_a_mobile_is_preferred_and_fax_and_400_numbers_are_not_the_person(self):
        draft = card_fields_extract(
            lines(
                ("广州力拓机械有限公司", 30),
                ("陈晓东", 50),
                ("传真：020-8888 1234", 22),
                ("服务热线 400-800-1234", 22),
                ("T 020-8888 5678", 22),
                ("手机 138 2600 1111", 22),
            )
        )
        assert draft.phone == "+8613826001111"
        assert [p["kind"] for p in draft.phones] == ["service", "landline", "mobile"]
        assert (draft.province, draft.city) == ("广东", "广州")

    def test_labels_in_english_and_a_labelled_company_and_address(self):
        draft = card_fields_extract(
            lines(
                ("公司：苏州工业园区星海精密制造厂", 26),
                ("周 敏", 50),
                ("Sales Director", 24),
                ("E-mail: zhou.min@star-sea.cn", 22),
                ("地 址：江苏省苏州市工业园区星湖街 328 号", 22),
            )
        )
        assert draft.company == "苏州工业园区星海精密制造厂"
        assert (draft.name, draft.title, draft.email) == ("周敏", "Sales Director", "zhou.min@star-sea.cn")
        assert draft.address == "江苏省苏州市工业园区星湖街328号"
        assert draft.city == "苏州"
        assert draft.phone == ""

    def test_an_address_in_a_science_park_is_not_the_company(self):
        draft = card_fields_extract(
            lines(("深圳市云图科技有限公司", 30), ("刘洋", 50), ("地址：深圳市南山区科技园科苑路 15 号", 22))
        )
        assert draft.company == "深圳市云图科技有限公司"
        assert draft.city == "深圳"

    def test_nothing_readable_proposes_nothing(self):
        assert not any(card_fields_extract([]).fields().values())


# --- scope -----------------------------------------------------------------------------------


class TestScope:
    def test_who_sees_a_card(self, show, card_png, org):
        event = upload(org.alice, show, card_png)
        visible = {
            u.username
            for u in (org.alice, org.bob, org.erin, org.carol, org.dave, org.director, org.pm, org.admin)
            if cards.cards_visible_to(u).filter(pk=event.pk).exists()
        }
        assert visible == {"alice", "carol", "director", "admin"}

    def test_confirmation_events_are_not_cards(self, show, card_png, org):
        confirm(org.alice, upload(org.alice, show, card_png))
        assert cards.cards_visible_to(org.admin).count() == 1


# --- pages -----------------------------------------------------------------------------------


class TestPages:
    @pytest.mark.parametrize("url", ["/intake/cards/", "/intake/cards/1/", "/intake/cards/1/image"])
    def test_it_sends_anonymous_visitors_to_login(self, client, url):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")

    def test_the_list_offers_the_camera_and_shows_own_drafts(self, client, show, card_png, org):
        event = upload(org.alice, show, card_png)
        client.force_login(org.alice)
        page = client.get("/intake/cards/").content.decode()
        assert 'accept="image/*" capture="environment"' in page
        assert f'href="/intake/cards/{event.pk}/"' in page and NAME in page
        client.force_login(org.bob)
        assert f"/intake/cards/{event.pk}/" not in client.get("/intake/cards/").content.decode()

    def test_upload_read_check_and_confirm_on_the_pages(self, client, show, card_png, org):
        client.force_login(org.alice)
        # when alice photographs the card
        response = client.post(
            "/intake/cards/upload/", {"photo": SimpleUploadedFile("IMG_0001.png", card_png, "image/png")}
        )
        event = InboundEvent.objects.get()
        assert response.status_code == 302 and response["Location"] == f"/intake/cards/{event.pk}/"
        # then the photo stands beside the fields OCR proposes, and the lines it read
        page = client.get(response["Location"]).content.decode()
        assert f'src="/intake/cards/{event.pk}/image"' in page
        assert f'name="name" value="{NAME}"' in page and f'name="phone" value="{MOBILE_E164}"' in page
        assert f'<option value="{COMPANY}">' in page
        image = client.get(f"/intake/cards/{event.pk}/image")
        assert (image.status_code, image["Content-Type"]) == (200, "image/png")
        assert b"".join(image.streaming_content) == card_png
        # when she confirms, the lead goes to the pool, which a rep does not see, so she stays here
        form = {
            "name": NAME,
            "title": TITLE,
            "company": COMPANY,
            "phone": "139 0571 2345",
            "email": EMAIL,
            "address": "",
        }
        response = client.post(f"/intake/cards/{event.pk}/confirm/", form, follow=True)
        # the rep's own card became her own lead: she lands on it
        assert response.redirect_chain[-1][0] == f"/leads/{Lead.objects.get().pk}/"

    def test_a_manager_confirming_goes_to_the_lead(self, client, show, card_png, org):
        event = upload(org.alice, show, card_png)
        client.force_login(org.carol)
        form = {
            "name": NAME,
            "title": TITLE,
            "company": COMPANY,
            "phone": MOBILE_E164,
            "email": "",
            "address": "",
        }
        response = client.post(f"/intake/cards/{event.pk}/confirm/", form)
        assert response["Location"] == f"/leads/{Lead.objects.get().pk}/"
        # carol looked at a card alice collected: that is logged
        client.get(f"/intake/cards/{event.pk}/")
        assert PersonalDataAccess.objects.filter(actor=org.carol, subject_id=str(event.pk)).exists()

    def test_a_refused_confirmation_shows_the_problem_by_field(self, client, show, card_png, org):
        event = upload(org.alice, show, card_png)
        client.force_login(org.alice)
        form = {"name": NAME, "phone": "12345", "email": "", "title": "", "company": "", "address": ""}
        response = client.post(f"/intake/cards/{event.pk}/confirm/", form)
        assert response.status_code == 422
        assert "field--invalid" in response.content.decode()
        assert not Lead.objects.exists()

    def test_a_non_image_upload_is_refused_on_the_page(self, client, show, org):
        client.force_login(org.alice)
        response = client.post(
            "/intake/cards/upload/", {"photo": SimpleUploadedFile("notes.txt", b"hello", "text/plain")}
        )
        assert response.status_code == 415
        assert not InboundEvent.objects.exists()

    def test_another_reps_card_is_not_found(self, client, show, card_png, org):
        event = upload(org.alice, show, card_png)
        client.force_login(org.bob)
        for url in (f"/intake/cards/{event.pk}/", f"/intake/cards/{event.pk}/image"):
            assert client.get(url).status_code == 404
        assert client.post(f"/intake/cards/{event.pk}/confirm/", {"name": "x"}).status_code == 404


# --- the API -------------------------------------------------------------------------------


class TestApi:
    def test_upload_list_read_and_confirm(self, client, api_as, show, card_png, org):
        alice = api_as(org.alice)
        response = client.post(
            "/api/v1/intake/cards",
            {"photo": SimpleUploadedFile("card.png", card_png, "image/png"), "source_id": show.pk},
            headers=alice.headers,
        )
        assert response.status_code == 202, response.content
        card = response.json()
        assert (card["status"], card["ocr_pending"], card["fields"]["name"]) == ("draft", False, NAME)
        assert card["image_url"].endswith(f"/api/v1/intake/cards/{card['event_id']}/image")
        listed = alice.get("/api/v1/intake/cards", status="draft").json()["items"]
        assert [c["event_id"] for c in listed] == [card["event_id"]]
        detail = alice.get(f"/api/v1/intake/cards/{card['event_id']}").json()
        assert NAME in {line["text"] for line in detail["ocr_lines"]}
        confirmed = alice.post(
            f"/api/v1/intake/cards/{card['event_id']}/confirm", {**detail["fields"]}
        ).json()
        assert confirmed["status"] == "ignored" and confirmed["lead_id"] == Lead.objects.get().pk
        assert confirmed["confirmed"]["corrected"] == []
        image = client.get(f"/api/v1/intake/cards/{card['event_id']}/image", headers=alice.headers)
        assert (image.status_code, b"".join(image.streaming_content)) == (200, card_png)

    def test_an_upload_goes_to_the_chosen_card_source_only(self, client, api_as, show, douyin, card_png, org):
        headers = api_as(org.alice).headers
        other = source_create(actor=None, kind="card", name="2026 广交会", secret=SECRET)
        photo = SimpleUploadedFile("card.png", card_png, "image/png")
        response = client.post(
            "/api/v1/intake/cards", {"photo": photo, "source_id": other.pk}, headers=headers
        )
        assert response.json()["source_id"] == other.pk
        photo.seek(0)
        response = client.post(
            "/api/v1/intake/cards", {"photo": photo, "source_id": douyin.pk}, headers=headers
        )
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "source_id"]

    def test_scope_and_query_count_of_the_list(
        self, api_as, show, card_png, blank_png, org, django_assert_num_queries
    ):
        upload(org.alice, show, card_png)
        upload(org.bob, show, blank_png)
        assert api_as(org.bob).get("/api/v1/intake/cards").json()["items"][0]["status"] == "failed"
        assert len(api_as(org.bob).get("/api/v1/intake/cards").json()["items"]) == 1
        director = api_as(org.director)
        # the token (read, then its last use), then one page of cards with their source and uploader
        with django_assert_num_queries(3):
            items = director.get("/api/v1/intake/cards").json()["items"]
        assert len(items) == 2

    def test_another_reps_card_is_404(self, client, api_as, show, card_png, org):
        event = upload(org.alice, show, card_png)
        bob = api_as(org.bob)
        assert bob.get(f"/api/v1/intake/cards/{event.pk}").status_code == 404
        assert bob.get(f"/api/v1/intake/cards/{event.pk}/image").status_code == 404
        assert (
            bob.post(
                f"/api/v1/intake/cards/{event.pk}/confirm", {"name": NAME, "phone": MOBILE_E164}
            ).status_code
            == 404
        )

    def test_a_refused_confirmation_names_the_field(self, api_as, show, card_png, org):
        event = upload(org.alice, show, card_png)
        response = api_as(org.alice).post(
            f"/api/v1/intake/cards/{event.pk}/confirm", {"name": NAME, "phone": "12345"}
        )
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "phone"]

    def test_an_upload_without_a_source_creates_the_default_card_source(self, client, api_as, org, card_png):
        headers = api_as(org.alice).headers
        response = client.post(
            "/api/v1/intake/cards",
            {"photo": SimpleUploadedFile("c.png", card_png, "image/png")},
            headers=headers,
        )
        assert response.status_code == 202
        source = Source.objects.get()
        assert (source.kind, source.name, len(source.secret) >= 32) == ("card", "展会名片", True)
        wrong = client.post(
            "/api/v1/intake/cards",
            {"photo": SimpleUploadedFile("c.txt", b"hi", "text/plain")},
            headers=headers,
        )
        assert wrong.status_code == 415
