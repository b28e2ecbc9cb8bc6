"""The engagement API (SPEC C3.4): each fact kind, 422 naming the field, idempotent meeting pushes,
downloads and the scope of every endpoint (out of scope is a 404)."""

from __future__ import annotations

import datetime as dt

import pytest

from salesloop.core import clock
from salesloop.engagement import services
from salesloop.engagement.models import BudgetMilestone, Meeting, Touch
from tests.engagement.conftest import pdf_bytes, pdf_upload
from tests.factories import lead_make

T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)


@pytest.fixture
def lead(org):
    clock.set_now(T0)
    return lead_make(owner=org.alice)


def error_fields(response) -> list[str]:
    assert response.status_code == 422, response.content
    return [item["loc"][-1] for item in response.json()["detail"]]


class TestAttachments:
    def test_a_pdf_uploaded_as_multipart_is_listed_and_downloaded(self, org, lead, api_as, client):
        api = api_as(org.alice)
        response = client.post(
            f"/api/v1/leads/{lead.pk}/attachments",
            {"kind": "proposal", "title": "报价方案", "file": pdf_upload()},
            headers=api.headers,
        )
        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["kind"], body["title"], body["content_type"]) == (
            "proposal",
            "报价方案",
            "application/pdf",
        )
        listed = api.get(f"/api/v1/leads/{lead.pk}/attachments").json()
        assert [a["id"] for a in listed] == [body["id"]]
        download = api.get(body["download_url"])
        assert download.status_code == 200
        assert download["Content-Type"] == "application/pdf"
        assert b"".join(download.streaming_content) == pdf_bytes()

    def test_a_link_as_json(self, org, lead, api_as):
        response = api_as(org.alice).post(
            f"/api/v1/leads/{lead.pk}/attachments",
            {"kind": "deck_link", "title": "演示", "url": "https://example.com/deck"},
        )
        assert response.status_code == 201
        assert response.json()["download_url"] is None

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"kind": "deck_link", "url": "not a link"}, "url"),
            ({"kind": "bad kind!", "url": "https://example.com"}, "kind"),
            ({"url": "https://example.com"}, "kind"),
            ({"kind": "x", "url": "https://e.com", "title": "长" * 201}, "title"),
        ],
    )
    def test_bad_json_is_refused_naming_the_field(self, org, lead, api_as, body, field):
        response = api_as(org.alice).post(f"/api/v1/leads/{lead.pk}/attachments", body)
        assert error_fields(response) == [field]

    def test_an_executable_is_refused_naming_the_file(self, org, lead, api_as, client):
        from django.core.files.uploadedfile import SimpleUploadedFile

        upload = SimpleUploadedFile("tool.exe", b"MZ\x90\x00", content_type="application/octet-stream")
        response = client.post(
            f"/api/v1/leads/{lead.pk}/attachments",
            {"kind": "other", "file": upload},
            headers=api_as(org.alice).headers,
        )
        assert error_fields(response) == ["file"]

    def test_withdrawing_keeps_the_attachment_in_the_list(self, org, lead, api_as):
        api = api_as(org.alice)
        created = api.post(
            f"/api/v1/leads/{lead.pk}/attachments", {"kind": "proposal", "url": "https://e.com/p"}
        ).json()
        response = api.post(f"/api/v1/attachments/{created['id']}/remove", {"reason": "旧版"})
        assert response.status_code == 200 and response.json()["removed_at"] is not None
        assert len(api.get(f"/api/v1/leads/{lead.pk}/attachments").json()) == 1


class TestDocuments:
    def test_share_then_revoke(self, org, lead, api_as):
        api = api_as(org.alice)
        created = api.post(
            f"/api/v1/leads/{lead.pk}/attachments", {"kind": "proposal", "url": "https://e.com/p"}
        ).json()
        shared = api.post(f"/api/v1/attachments/{created['id']}/share")
        assert shared.status_code == 201
        assert "/d/" in shared.json()["share_url"]
        again = api.post(f"/api/v1/attachments/{created['id']}/share")
        assert again.status_code == 200 and again.json()["share_url"] == shared.json()["share_url"]
        revoked = api.post(f"/api/v1/documents/{shared.json()['id']}/revoke")
        assert revoked.json()["share_url"] is None and revoked.json()["revoked_at"] is not None
        assert api.get(f"/api/v1/leads/{lead.pk}/documents").json()[0]["opens"] == 0


class TestTouches:
    def test_record_and_list(self, org, lead, api_as):
        api = api_as(org.alice)
        response = api.post(
            f"/api/v1/leads/{lead.pk}/touches",
            {"kind": "call", "direction": "outbound", "note": "介绍方案", "contact_id": lead.contact_id},
        )
        assert response.status_code == 201, response.content
        assert response.json()["responded"] is None
        listed = api.get(f"/api/v1/leads/{lead.pk}/touches").json()
        assert [t["note"] for t in listed] == ["介绍方案"]

    def test_the_response_is_recorded_later(self, org, lead, api_as):
        api = api_as(org.alice)
        touch = api.post(
            f"/api/v1/leads/{lead.pk}/touches", {"kind": "email", "direction": "outbound"}
        ).json()
        response = api.patch(f"/api/v1/touches/{touch['id']}", {"responded": True})
        assert response.status_code == 200 and response.json()["responded"] is True
        assert error_fields(api.patch(f"/api/v1/touches/{touch['id']}", {"responded": False})) == [
            "responded"
        ]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"kind": "fax", "direction": "outbound"}, "kind"),
            ({"kind": "call", "direction": "inbound", "responded": True}, "responded"),
            ({"kind": "call", "direction": "outbound", "at": "2030-01-01T00:00:00Z"}, "at"),
            ({"kind": "call", "direction": "outbound", "at": "0001-01-01T00:00:00+08:00"}, "at"),
            ({"kind": "call", "direction": "outbound", "contact_id": 999999}, "contact_id"),
        ],
    )
    def test_bad_input_is_a_422_naming_the_field(self, org, lead, api_as, body, field):
        assert error_fields(api_as(org.alice).post(f"/api/v1/leads/{lead.pk}/touches", body)) == [field]
        assert Touch.objects.count() == 0


class TestMeetings:
    def test_schedule_then_record_the_outcome(self, org, lead, api_as):
        api = api_as(org.alice)
        created = api.post(
            f"/api/v1/leads/{lead.pk}/meetings",
            {"title": "方案演示", "scheduled_at": "2026-03-01T10:00:00+08:00"},
        )
        assert created.status_code == 201, created.content
        meeting_id = created.json()["id"]
        bad = api.patch(f"/api/v1/meetings/{meeting_id}", {"status": "attended"})
        assert error_fields(bad) == ["attended_minutes"]
        done = api.patch(f"/api/v1/meetings/{meeting_id}", {"status": "attended", "attended_minutes": 40})
        assert done.json()["status"] == "attended" and done.json()["attended_minutes"] == 40
        assert [m["id"] for m in api.get(f"/api/v1/leads/{lead.pk}/meetings").json()] == [meeting_id]

    def test_a_null_for_a_required_field_is_a_422(self, org, lead, api_as):
        api = api_as(org.alice)
        meeting = api.post(
            f"/api/v1/leads/{lead.pk}/meetings", {"title": "会", "scheduled_at": "2026-03-01T10:00:00Z"}
        )
        assert error_fields(
            api.patch(f"/api/v1/meetings/{meeting.json()['id']}", {"planned_minutes": None})
        ) == ["planned_minutes"]

    def test_a_meeting_system_push_is_idempotent(self, org, lead, api_as):
        api = api_as(org.alice)
        push = {
            "lead_id": lead.pk,
            "title": "腾讯会议演示",
            "scheduled_at": "2026-03-01T10:00:00+08:00",
            "online": True,
        }
        first = api.client.put(
            "/api/v1/meetings/by-external/tencent/abc-1",
            push,
            content_type="application/json",
            headers=api.headers,
        )
        replay = api.client.put(
            "/api/v1/meetings/by-external/tencent/abc-1",
            push,
            content_type="application/json",
            headers=api.headers,
        )
        outcome = api.client.put(
            "/api/v1/meetings/by-external/tencent/abc-1",
            {"lead_id": lead.pk, "status": "attended", "attended_minutes": 55},
            content_type="application/json",
            headers=api.headers,
        )
        assert (first.status_code, replay.status_code, outcome.status_code) == (201, 200, 200)
        assert first.json()["id"] == replay.json()["id"] == outcome.json()["id"]
        assert Meeting.objects.count() == 1
        assert outcome.json()["attended_minutes"] == 55

    def test_a_first_push_without_a_time_is_a_422(self, org, lead, api_as):
        api = api_as(org.alice)
        response = api.client.put(
            "/api/v1/meetings/by-external/zoom/1",
            {"lead_id": lead.pk, "title": "x"},
            content_type="application/json",
            headers=api.headers,
        )
        assert error_fields(response) == ["scheduled_at"]


class TestBudget:
    def test_record_and_current(self, org, lead, api_as):
        api = api_as(org.alice)
        api.post(f"/api/v1/leads/{lead.pk}/budget", {"stage": "unknown"})
        response = api.post(
            f"/api/v1/leads/{lead.pk}/budget",
            {"stage": "range_known", "amount_low": "100000", "amount_high": "250000.50"},
        )
        assert response.status_code == 201
        listed = api.get(f"/api/v1/leads/{lead.pk}/budget").json()
        assert listed["current"]["stage"] == "range_known" and len(listed["items"]) == 2

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"stage": "someday"}, "stage"),
            ({"stage": "confirmed", "amount_low": "300", "amount_high": "100"}, "amount_high"),
            ({"stage": "confirmed", "amount_low": "-1"}, "amount_low"),
            ({"stage": "confirmed", "amount_low": "1e20"}, "amount_low"),
        ],
    )
    def test_bad_input_is_a_422_naming_the_field(self, org, lead, api_as, body, field):
        assert error_fields(api_as(org.alice).post(f"/api/v1/leads/{lead.pk}/budget", body)) == [field]
        assert BudgetMilestone.objects.count() == 0


class TestScope:
    """bob (another rep of 华东) and dave (华南's manager) cannot see alice's lead: 404 everywhere."""

    @pytest.fixture
    def records(self, org, lead):
        attachment = services.attachment_add(actor=org.alice, lead=lead, kind="proposal", file=pdf_upload())
        document = services.document_share(actor=org.alice, attachment=attachment)
        touch = services.touch_record(actor=org.alice, lead=lead, kind="call", direction="outbound")
        meeting = services.meeting_push(
            actor=org.alice, lead=lead, system="zoom", external_id="7", title="演示", scheduled_at=T0
        )[0]
        return {
            "lead": lead,
            "attachment": attachment,
            "document": document,
            "touch": touch,
            "meeting": meeting,
        }

    @pytest.mark.parametrize("who", ["bob", "dave"])
    def test_out_of_scope_is_a_404_for_every_endpoint(self, org, records, api_as, who):
        api = api_as(getattr(org, who))
        lead, attachment = records["lead"], records["attachment"]
        reads = [
            f"/api/v1/leads/{lead.pk}/attachments",
            f"/api/v1/leads/{lead.pk}/documents",
            f"/api/v1/leads/{lead.pk}/touches",
            f"/api/v1/leads/{lead.pk}/meetings",
            f"/api/v1/leads/{lead.pk}/budget",
            f"/api/v1/attachments/{attachment.pk}/file",
            f"/api/v1/documents/{records['document'].pk}",
            f"/api/v1/meetings/{records['meeting'].pk}",
        ]
        for path in reads:
            assert api.get(path).status_code == 404, path
        writes = [
            (f"/api/v1/leads/{lead.pk}/attachments", {"kind": "x", "url": "https://e.com"}),
            (f"/api/v1/leads/{lead.pk}/touches", {"kind": "call", "direction": "outbound"}),
            (f"/api/v1/leads/{lead.pk}/meetings", {"title": "t", "scheduled_at": "2026-03-01T00:00:00Z"}),
            (f"/api/v1/leads/{lead.pk}/budget", {"stage": "unknown"}),
            (f"/api/v1/attachments/{attachment.pk}/share", {}),
            (f"/api/v1/attachments/{attachment.pk}/remove", {}),
            (f"/api/v1/documents/{records['document'].pk}/revoke", {}),
        ]
        for path, body in writes:
            assert api.post(path, body).status_code == 404, path
        assert api.patch(f"/api/v1/meetings/{records['meeting'].pk}", {"title": "x"}).status_code == 404
        assert api.patch(f"/api/v1/touches/{records['touch'].pk}", {"responded": True}).status_code == 404
        push = api.client.put(
            "/api/v1/meetings/by-external/zoom/7",
            {"lead_id": lead.pk, "status": "cancelled"},
            content_type="application/json",
            headers=api.headers,
        )
        assert push.status_code == 404
        assert Touch.objects.count() == 1 and Meeting.objects.get().status == "scheduled"

    def test_the_manager_of_the_region_sees_and_downloads(self, org, records, api_as):
        api = api_as(org.carol)
        assert api.get(f"/api/v1/attachments/{records['attachment'].pk}/file").status_code == 200

    def test_a_product_manager_reads_but_cannot_add(self, org, records, api_as):
        api = api_as(org.pm)
        assert api.get(f"/api/v1/leads/{records['lead'].pk}/touches").status_code == 200
        response = api.post(
            f"/api/v1/leads/{records['lead'].pk}/touches", {"kind": "call", "direction": "outbound"}
        )
        assert response.status_code == 403

    def test_without_a_token_nothing_is_served(self, records, client):
        assert client.get(f"/api/v1/attachments/{records['attachment'].pk}/file").status_code == 401
