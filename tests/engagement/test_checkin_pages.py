"""The check-in pages without JavaScript (SPEC C4; issue 6 items 1, 2, 4): the form posts fields and
files at once; a refusal re-renders it with the errors and what was typed; the daily report, the
manager's team day and the evidence files keep to the viewer's scope."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from salesloop.core import clock
from salesloop.crm.models import Attachment
from salesloop.engagement.checkin_models import Checkin
from tests.engagement.checkin_helpers import checkin_make, jpeg_bytes, uploaded
from tests.factories import lead_make

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)


@pytest.fixture
def lead(org):
    clock.set_now(T0)
    return lead_make(owner=org.alice, title="星河新能源 MES")


def form_data(lead, **extra):
    return {
        "client_key": "k" * 32,
        "lead": lead.pk,
        "action_type": "visit",
        "result_type": "progressed",
        "result_text": "拜访了采购经理，约了演示",
        **extra,
    }


def test_the_checkin_page_is_built_for_a_phone(org, lead, client):
    client.force_login(org.alice)
    response = client.get(f"/checkins/new?lead={lead.pk}")
    assert response.status_code == 200
    html = response.content.decode()
    # the camera opens straight from the page, for each kind of evidence
    cameras = re.findall(
        r'<input type="file" name="(evidence_\w+)" accept="([^"]+)" capture="environment"', html
    )
    assert [name for name, _ in cameras] == [
        "evidence_site_photo",
        "evidence_meeting_minutes",
        "evidence_signature_page",
    ]
    assert all(accept.startswith("image/*") for _, accept in cameras)
    assert "星河新能源 MES" in html and 'name="to_stage"' in html
    assert "拜访" in html and "签约" in html  # the configured action types, in Chinese by default


def test_the_lead_page_and_the_nav_lead_to_it(org, lead, client):
    client.force_login(org.alice)
    assert f'href="/checkins/new?lead={lead.pk}"' in client.get(f"/leads/{lead.pk}/").content.decode()
    assert 'href="/checkins/new"' in client.get("/").content.decode()
    client.force_login(org.carol)
    assert 'href="/checkins/team/"' in client.get("/").content.decode()


def test_another_reps_lead_is_not_found(org, lead, client):
    client.force_login(org.bob)
    assert client.get(f"/checkins/new?lead={lead.pk}").status_code == 404
    assert client.post("/checkins/new", form_data(lead)).status_code == 404
    assert client.get("/checkins/new?lead=99999999999999999999").status_code == 404
    assert client.post("/checkins/new", {**form_data(lead), "lead": "9" * 20}).status_code == 422


def test_a_checkin_with_a_photo_posts_in_one_go_without_javascript(org, lead, client):
    client.force_login(org.alice)
    photo = SimpleUploadedFile("现场.jpg", jpeg_bytes(), content_type="image/jpeg")
    response = client.post("/checkins/new", {**form_data(lead), "evidence_site_photo": photo})
    assert response.status_code == 302
    assert response["Location"] == "/checkins/?date=2026-03-02"
    checkin = Checkin.objects.get()
    assert checkin.evidence.get().attachment.kind == "site_photo"
    # posting the same form again (a double tap) creates nothing more
    client.post("/checkins/new", form_data(lead))
    assert Checkin.objects.count() == 1


def test_a_refusal_keeps_what_was_typed_and_names_the_field(org, lead, client):
    client.force_login(org.alice)
    response = client.post(
        "/checkins/new",
        {
            **form_data(lead, result_text="客户说下月再谈"),
            "evidence_site_photo": SimpleUploadedFile("a.docx", b"PK\x03\x04"),
        },
    )
    assert response.status_code == 422
    html = unescape(response.content.decode())
    assert "客户说下月再谈" in html
    assert "evidence is a photo or a PDF" in html
    assert Checkin.objects.count() == 0


def test_a_refused_stage_move_shows_what_is_missing_and_saves_nothing(org, lead, client):
    client.force_login(org.alice)
    response = client.post(
        "/checkins/new", form_data(lead, to_stage="solution_demo", result_text="演示很成功")
    )
    assert response.status_code == 422
    html = unescape(response.content.decode())
    assert "演示很成功" in html  # what was typed is still there
    assert 'value="solution_demo" selected' in html
    assert "痛点清单" in html or "Pain-point list" in html  # what the gate is missing
    assert Checkin.objects.count() == 0 and Attachment.objects.count() == 0


def test_the_daily_report_shows_the_days_checkins_with_evidence(org, lead, client):
    checkin = checkin_make(org.alice, lead, upload_ids=[uploaded(org.alice).pk])
    evidence = checkin.evidence.get()
    client.force_login(org.alice)
    html = client.get("/checkins/?date=2026-03-02").content.decode()
    assert "见了IT总监" in html
    assert f'src="/checkins/evidence/{evidence.pk}/file"' in html
    assert "见了IT总监" not in client.get("/checkins/?date=2026-03-01").content.decode()
    assert client.get("/checkins/?date=not-a-day").status_code == 200  # today, not a 500
    # the thumbnail's file is served inline to her, and to nobody out of scope
    file = client.get(f"/checkins/evidence/{evidence.pk}/file")
    assert file.status_code == 200 and file["Content-Type"] == "image/jpeg"
    assert b"".join(file.streaming_content) == jpeg_bytes()
    client.force_login(org.bob)
    assert client.get(f"/checkins/evidence/{evidence.pk}/file").status_code == 404
    assert client.get(f"/checkins/?rep={org.alice.pk}").status_code == 404


def test_the_manager_sees_the_team_day_and_drills_into_a_rep(
    org, lead, client, django_assert_max_num_queries
):
    checkin_make(org.alice, lead, upload_ids=[uploaded(org.alice).pk])
    client.force_login(org.carol)
    html = unescape(client.get("/checkins/team/?date=2026-03-02").content.decode())
    assert "Alice 王" in html
    without = html.split('id="without-title"')[1]
    assert "bob" in without and "Alice" not in without
    assert (
        f"/checkins/?rep={org.alice.pk}&amp;date=2026-03-02"
        in client.get("/checkins/team/?date=2026-03-02").content.decode()
    )
    drill = client.get(f"/checkins/?rep={org.alice.pk}&date=2026-03-02").content.decode()
    assert "见了IT总监" in drill and "/checkins/evidence/" in drill
    # dave manages 华南: alice's day is not his to see
    client.force_login(org.dave)
    assert client.get(f"/checkins/?rep={org.alice.pk}").status_code == 404
    assert "Alice" not in client.get("/checkins/team/?date=2026-03-02").content.decode()
    # reps have no team page
    client.force_login(org.alice)
    assert client.get("/checkins/team/").status_code == 403


def test_a_rep_withdraws_her_own_checkin_from_the_report_with_a_reason(org, lead, client):
    checkin = checkin_make(org.alice, lead)
    # bob cannot reach it
    client.force_login(org.bob)
    assert client.post(f"/checkins/{checkin.pk}/withdraw", {"reason": "x"}).status_code == 404
    client.force_login(org.alice)
    assert (
        f'action="/checkins/{checkin.pk}/withdraw"'
        in client.get("/checkins/?date=2026-03-02").content.decode()
    )
    # without a reason nothing changes and she is told why
    page = client.post(f"/checkins/{checkin.pk}/withdraw", {"reason": " "}, follow=True)
    assert "say why" in page.content.decode()
    checkin.refresh_from_db()
    assert checkin.withdrawn_at is None
    # with one, it is withdrawn, still listed, and no longer counted
    page = client.post(f"/checkins/{checkin.pk}/withdraw", {"reason": "选错了线索"}, follow=True)
    checkin.refresh_from_db()
    assert checkin.withdrawn_reason == "选错了线索"
    html = page.content.decode()
    assert "选错了线索" in html and "0 条签到" in html


def test_the_daily_report_shows_what_ocr_read_beside_the_evidence_masked_for_a_director(org, lead, client):
    # given: alice checks in with a signed contract page naming another company than her lead's
    from salesloop.demo.evidence_images import signature_page

    page = signature_page(fmt="JPEG")
    upload = uploaded(org.alice, data=page, kind="signature_page", name="签署页.jpg")
    checkin_make(org.alice, lead, upload_ids=[upload.pk])

    # when: she opens her day
    client.force_login(org.alice)
    html = client.get("/checkins/?date=2026-03-02").content.decode()

    # then: the facts read sit beside the evidence, with the company flag and her customer's phone
    assert 'data-fact="amount"' in html and "128000.00" in html
    assert 'class="ocr__mismatch"' in html and "杭州星河新能源科技有限公司" in html
    assert "+8657187654321" in html
    # a director reviews the day: the same facts, the phone masked
    client.force_login(org.director)
    html = client.get(f"/checkins/?date=2026-03-02&rep={org.alice.pk}").content.decode()
    assert 'data-fact="amount"' in html
    assert "+8657187654321" not in html and "571****4321" in html
