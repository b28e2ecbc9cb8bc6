"""The lead page's engagement panel and the public document viewer (SPEC C3.4)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from salesloop.core import clock
from salesloop.engagement import services
from salesloop.engagement.models import BudgetMilestone, DocumentView, Meeting, Touch
from tests.engagement.conftest import pdf_bytes, pdf_upload
from tests.factories import lead_make

T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
HTMX = {"HX-Request": "true"}


@pytest.fixture
def lead(org):
    clock.set_now(T0)
    return lead_make(owner=org.alice, title="云启 CRM 项目")


@pytest.fixture
def document(org, lead):
    attachment = services.attachment_add(
        actor=org.alice, lead=lead, kind="proposal", title="报价方案", file=pdf_upload()
    )
    return services.document_share(actor=org.alice, attachment=attachment)


class TestPanel:
    def test_the_lead_page_loads_the_panel_lazily(self, org, lead, client):
        client.force_login(org.alice)
        page = client.get(f"/leads/{lead.pk}/").content.decode()
        assert f'hx-get="/leads/{lead.pk}/engagement/"' in page

    def test_the_panel_shows_every_kind_of_fact_in_a_fixed_number_of_queries(
        self, org, lead, document, client, django_assert_num_queries
    ):
        view = services.document_view_open(document=document)
        clock.advance(dt.timedelta(seconds=9))
        services.document_view_beat(token=document.token, view_key=view.view_key, visible_ms=9000)
        services.touch_record(actor=org.alice, lead=lead, kind="visit", direction="outbound", note="上门拜访")
        services.meeting_schedule(actor=org.alice, lead=lead, title="方案演示会", scheduled_at=T0)
        services.budget_milestone_record(actor=org.alice, lead=lead, stage="confirmed")
        client.force_login(org.alice)
        client.get(f"/leads/{lead.pk}/engagement/", headers=HTMX)  # warm the session and caches
        with django_assert_num_queries(12):  # 11 + the attachments' OCR results (one query)
            response = client.get(f"/leads/{lead.pk}/engagement/", headers=HTMX)
        html = response.content.decode()
        # more of everything, the same number of queries
        services.document_view_open(document=document)
        services.touch_record(actor=org.alice, lead=lead, kind="call", direction="inbound")
        services.meeting_schedule(actor=org.alice, lead=lead, title="复盘会", scheduled_at=T0)
        with django_assert_num_queries(12):
            client.get(f"/leads/{lead.pk}/engagement/", headers=HTMX)
        assert response.status_code == 200
        assert "报价方案" in html and "上门拜访" in html and "方案演示会" in html
        assert "打开 1 次，查看 9 秒" in html
        assert f"/d/{document.token}" in html
        assert 'aria-current="step">预算已确认' in html

    def test_the_kinds_a_stage_requires_are_offered_first_with_the_pipelines_labels(self, org, lead, client):
        services.attachment_add(actor=org.alice, lead=lead, kind="deck_link", url="https://example.com/deck")
        client.force_login(org.alice)
        html = client.get(f"/leads/{lead.pk}/engagement/", headers=HTMX).content.decode()
        options = re.findall(
            r'<option value="([a-z_]+)">', html.split('id="attachment-kinds"')[1].split("</datalist>")[0]
        )
        assert options[:2] == ["pain_points", "deck_link"]  # 方案演示's requirements in the default pipeline
        assert "other" in options
        assert '<span class="tag">定制方案链接</span>' in html

    def test_a_touch_from_the_quick_form(self, org, lead, client):
        client.force_login(org.alice)
        response = client.post(
            f"/leads/{lead.pk}/engagement/touches",
            {
                "kind": "call",
                "direction": "outbound",
                "responded": "yes",
                "at": "2026-03-02T09:30",
                "note": "约了演示",
            },
            headers=HTMX,
        )
        assert response.status_code == 200
        touch = Touch.objects.get()
        assert (touch.responded, touch.at) == (True, dt.datetime(2026, 3, 2, 1, 30, tzinfo=dt.UTC))
        assert "约了演示" in response.content.decode()

    def test_an_error_is_shown_on_its_field_and_the_values_are_kept(self, org, lead, client):
        client.force_login(org.alice)
        response = client.post(
            f"/leads/{lead.pk}/engagement/touches",
            {
                "kind": "message",
                "direction": "inbound",
                "responded": "yes",
                "at": "2026-03-02T09:30",
                "note": "回复了",
            },
            headers=HTMX,
        )
        html = response.content.decode()
        assert response.status_code == 422
        assert "field__error" in html and "only an outbound touch" in html
        assert "回复了" in html and re.search(r'value="message"[^>]*checked', html)
        assert Touch.objects.count() == 0

    def test_an_upload_a_share_and_a_meeting_outcome(self, org, lead, client):
        client.force_login(org.alice)
        client.post(
            f"/leads/{lead.pk}/engagement/attachments",
            {"kind": "proposal", "title": "方案", "file": pdf_upload()},
            headers=HTMX,
        )
        attachment = lead.attachments.get()
        shared = client.post(f"/leads/{lead.pk}/engagement/attachments/{attachment.pk}/share", headers=HTMX)
        assert "/d/" in shared.content.decode()
        client.post(
            f"/leads/{lead.pk}/engagement/meetings",
            {"title": "演示", "scheduled_at": "2026-03-02T09:00", "planned_minutes": "60"},
            headers=HTMX,
        )
        meeting = Meeting.objects.get()
        bad = client.post(
            f"/leads/{lead.pk}/engagement/meetings/{meeting.pk}/outcome",
            {f"m{meeting.pk}-status": "attended"},
            headers=HTMX,
        )
        assert bad.status_code == 422
        client.post(
            f"/leads/{lead.pk}/engagement/meetings/{meeting.pk}/outcome",
            {f"m{meeting.pk}-status": "attended", f"m{meeting.pk}-attended_minutes": "45"},
            headers=HTMX,
        )
        meeting.refresh_from_db()
        assert (meeting.status, meeting.attended_minutes) == ("attended", 45)

    def test_a_budget_range_upside_down_is_refused_on_its_field(self, org, lead, client):
        client.force_login(org.alice)
        response = client.post(
            f"/leads/{lead.pk}/engagement/budget",
            {"stage": "range_known", "amount_low": "500", "amount_high": "100"},
            headers=HTMX,
        )
        assert response.status_code == 422 and "the high end" in response.content.decode()
        assert BudgetMilestone.objects.count() == 0

    def test_another_rep_gets_a_404_for_the_panel_its_forms_and_downloads(self, org, lead, document, client):
        client.force_login(org.bob)
        attachment = document.attachment
        assert client.get(f"/leads/{lead.pk}/engagement/").status_code == 404
        assert client.post(f"/leads/{lead.pk}/engagement/touches", {"kind": "call"}).status_code == 404
        assert client.get(f"/leads/{lead.pk}/engagement/attachments/{attachment.pk}/file").status_code == 404
        other = lead_make(owner=org.bob)  # bob's own lead id with alice's attachment id: still 404
        assert client.get(f"/leads/{other.pk}/engagement/attachments/{attachment.pk}/file").status_code == 404

    def test_a_product_manager_sees_the_panel_without_forms(self, org, lead, client):
        client.force_login(org.pm)
        html = client.get(f"/leads/{lead.pk}/engagement/", headers=HTMX).content.decode()
        assert "touch-form" not in html

    def test_an_anonymous_visitor_is_sent_to_log_in(self, lead, document, client):
        response = client.get(f"/leads/{lead.pk}/engagement/attachments/{document.attachment_id}/file")
        assert response.status_code == 302 and "/login/" in response["Location"]


class TestViewer:
    def test_opening_the_link_without_login_records_a_view_and_embeds_the_pdf(self, document, client):
        response = client.get(f"/d/{document.token}")
        html = response.content.decode()
        assert response.status_code == 200
        view = DocumentView.objects.get()
        assert view.view_key in html
        assert f'src="/d/{document.token}/file"' in html
        assert response["Referrer-Policy"] == "no-referrer"
        pdf = client.get(f"/d/{document.token}/file")
        assert pdf["Content-Type"] == "application/pdf"
        assert pdf["X-Frame-Options"] == "SAMEORIGIN"
        assert b"".join(pdf.streaming_content) == pdf_bytes()

    def test_a_signed_in_colleague_gets_a_preview_that_counts_nothing(self, org, document, client):
        client.force_login(org.alice)
        html = client.get(f"/d/{document.token}").content.decode()
        assert "不计入" in html and 'data-view-key=""' in html
        assert DocumentView.objects.count() == 0

    def test_a_link_attachment_is_framed_and_linked(self, org, lead, client):
        attachment = services.attachment_add(
            actor=org.alice, lead=lead, kind="deck_link", url="https://example.com/deck"
        )
        document = services.document_share(actor=org.alice, attachment=attachment)
        html = client.get(f"/d/{document.token}").content.decode()
        assert 'src="https://example.com/deck"' in html
        assert client.get(f"/d/{document.token}/file").status_code == 404

    def test_a_beat_adds_the_visible_time_capped_by_the_clock(self, document, client):
        client.get(f"/d/{document.token}")
        view = DocumentView.objects.get()
        clock.advance(dt.timedelta(seconds=4))
        response = client.post(
            f"/d/{document.token}/beat", {"view_key": view.view_key, "visible_ms": "999999"}
        )
        assert response.status_code == 204
        view.refresh_from_db()
        assert view.seconds == 4

    def test_a_head_request_counts_no_opening(self, document, client):
        assert client.head(f"/d/{document.token}").status_code == 405
        assert DocumentView.objects.count() == 0

    @pytest.mark.parametrize("state", ["revoked", "withdrawn", "unknown"])
    def test_a_dead_link_is_a_404(self, org, document, client, state):
        token = document.token
        if state == "revoked":
            services.document_revoke(actor=org.alice, document=document)
        elif state == "withdrawn":
            services.attachment_remove(actor=org.alice, attachment=document.attachment)
        else:
            token = "A" * 43
        assert client.get(f"/d/{token}").status_code == 404
        assert client.get(f"/d/{token}/file").status_code == 404
        assert DocumentView.objects.count() == 0

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"view_key": "nope", "visible_ms": "10"},
            {"view_key": "k", "visible_ms": "ten"},
            {"view_key": "k\x00", "visible_ms": "1"},
            {"view_key": "k", "visible_ms": "-5"},
            {"view_key": "k", "visible_ms": "9" * 5000},
        ],
    )
    def test_junk_beats_are_answered_without_a_server_error(self, document, client, body):
        client.get(f"/d/{document.token}")
        response = client.post(f"/d/{document.token}/beat", body)
        assert response.status_code in (400, 404)
        assert DocumentView.objects.get().visible_ms == 0

    def test_junk_tokens_are_a_404(self, client, db):
        for token in ("%00", "x" * 300, "../../etc"):
            assert client.get(f"/d/{token}").status_code == 404
