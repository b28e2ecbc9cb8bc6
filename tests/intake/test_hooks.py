from __future__ import annotations

import json
import time

import pytest

from salesloop.crm.models import Contact, Lead
from salesloop.intake.models import InboundEvent
from salesloop.notify.models import Notification
from tests.intake.conftest import clue, signed_post

pytestmark = pytest.mark.django_db


class TestSignedChannels:
    def test_douyin_clue_becomes_a_lead_in_the_regions_pool(self, client, douyin):
        # given a Douyin lead whose number is a Guangzhou mobile and whose province is not given
        response = signed_post(client, douyin, clue(1, phone="139 2600 0000"))
        # then it is stored, processed and answered in one go
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["status"] == "created"
        lead = Lead.objects.get(pk=body["lead_id"])
        assert (lead.source, lead.campaign, lead.owner) == ("douyin", "618大促", None)
        assert lead.customer.province.name == "广东"  # derived from the number
        assert lead.customer.city == "广州"
        assert lead.region.name == "华南"
        assert lead.contact.phone == "+8613926000000"
        event = InboundEvent.objects.get(pk=body["event_id"])
        assert json.loads(event.body)["clue_id"] == "clue-1"
        assert event.headers["X-Salesloop-Signature"].startswith("sha256=")

    def test_a_replay_answers_the_same_and_creates_nothing(self, client, douyin):
        first = signed_post(client, douyin, clue(1)).json()
        again = signed_post(client, douyin, clue(1)).json()
        assert again == first
        assert (Lead.objects.count(), InboundEvent.objects.count()) == (1, 1)

    def test_a_known_phone_is_a_touch_on_the_open_lead_and_the_owner_is_told(self, client, douyin, org):
        first = signed_post(client, douyin, clue(1, phone="13800138000")).json()
        Lead.objects.filter(pk=first["lead_id"]).update(owner=org.alice)
        touch = signed_post(client, douyin, clue(2, phone="+86 138-0013-8000")).json()
        assert (touch["status"], touch["lead_id"]) == ("touch", first["lead_id"])
        assert Lead.objects.count() == 1
        note = Notification.objects.get(user=org.alice)
        assert "回流" in note.title and note.link == f"/leads/{first['lead_id']}/"

    def test_a_known_person_with_only_closed_leads_gets_a_new_lead(self, client, douyin, org):
        first = signed_post(client, douyin, clue(1)).json()
        Lead.objects.filter(pk=first["lead_id"]).update(status="lost", lost_reason="预算不足")
        again = signed_post(client, douyin, clue(2)).json()
        assert again["status"] == "created" and again["lead_id"] != first["lead_id"]
        assert Contact.objects.count() == 1  # still one person

    def test_a_list_is_received_item_by_item(self, client, douyin):
        response = signed_post(
            client,
            douyin,
            [clue(1, phone="13800138001"), clue(2, phone="13800138002"), clue(3, phone="13800138001")],
        )
        statuses = [r["status"] for r in response.json()["results"]]
        assert statuses == ["created", "created", "touch"]

    @pytest.mark.parametrize("tamper", ["secret", "old", "future", "missing"])
    def test_bad_signatures_are_401_and_store_nothing(self, client, douyin, tamper):
        if tamper == "missing":
            response = client.post(
                f"/hooks/{douyin.slug}", json.dumps(clue(1)), content_type="application/json"
            )
        elif tamper == "secret":
            response = signed_post(client, douyin, clue(1), secret="wrong-secret-wrong")
        else:
            skew = (
                -360 if tamper == "old" else 360
            )  # a minute outside the 5-minute window: a slow run cannot bring it back in
            response = signed_post(client, douyin, clue(1), timestamp=int(time.time()) + skew)
        assert response.status_code == 401
        assert "detail" in response.json()
        assert not InboundEvent.objects.exists()

    def test_oversized_body_is_413(self, client, douyin):
        huge = json.dumps(clue(1, remark="x" * (1024 * 1024))).encode()
        assert signed_post(client, douyin, None, raw=huge).status_code == 413
        assert not InboundEvent.objects.exists()

    def test_unknown_and_disabled_sources(self, client, douyin):
        assert client.post("/hooks/nope", "{}", content_type="application/json").status_code == 404
        douyin.enabled = False
        douyin.save()
        assert signed_post(client, douyin, clue(1)).status_code == 403
        assert client.get(f"/hooks/{douyin.slug}").status_code in (403, 405)

    def test_call_400_keeps_the_transcript_with_the_lead(self, client, call400, org, api_as):
        payload = {
            "call_id": "c-77",
            "caller": "02088886666",
            "called": "4008123456",
            "start_time": "1764200000",
            "end_time": "1764200300",
            "transcript": "您好，我们想采购一批工业设备，预算大约两百万。",
        }
        body = signed_post(client, call400, payload).json()
        assert body["status"] == "created"
        lead = Lead.objects.get(pk=body["lead_id"])
        assert lead.contact.phone == "+862088886666"
        arrivals = api_as(org.director).get(f"/api/v1/leads/{lead.pk}/arrivals").json()
        assert arrivals[0]["transcript"].startswith("您好，我们想采购")


class TestDeadLetters:
    def test_invalid_phone_is_kept_as_failed_with_the_reason(self, client, douyin, org, api_as):
        body = signed_post(client, douyin, clue(1, phone="12345")).json()
        assert body["status"] == "failed" and body["lead_id"] is None
        assert "telephone" in body["error"]
        listed = api_as(org.admin).get("/api/v1/intake/events", status="failed").json()["items"]
        assert [e["id"] for e in listed] == [body["event_id"]]
        assert not Lead.objects.exists()

    def test_not_json_is_kept_too(self, client, douyin):
        body = signed_post(client, douyin, None, raw=b"<xml>not json</xml>").json()
        assert body["status"] == "failed"
        assert InboundEvent.objects.get().body == "<xml>not json</xml>"

    def test_fixing_the_mapping_then_retrying_creates_the_lead(self, client, douyin, org, api_as):
        # given a campaign whose form calls the phone field "mobile"
        payload = clue(1)
        payload["mobile"] = payload.pop("telephone")
        failed = signed_post(client, douyin, payload).json()
        assert failed["status"] == "failed"
        api = api_as(org.admin)
        # when the admin fixes the mapping and retries
        fix = api.patch(f"/api/v1/intake/sources/{douyin.pk}", {"field_mapping": {"phone": "mobile"}})
        assert fix.status_code == 200, fix.content
        retried = api.post(f"/api/v1/intake/events/{failed['event_id']}/retry")
        assert retried.status_code == 200, retried.content
        assert retried.json()["status"] == "created"
        assert Lead.objects.count() == 1
        # and retrying a processed event is refused by field
        again = api.post(f"/api/v1/intake/events/{failed['event_id']}/retry")
        assert again.status_code == 422
        # and a replay of the original delivery answers with the event's current outcome
        assert signed_post(client, douyin, payload).json()["status"] == "created"

    def test_only_admins_and_directors_retry_and_reps_see_no_events(self, client, douyin, org, api_as):
        failed = signed_post(client, douyin, clue(1, phone="123")).json()
        assert api_as(org.carol).post(f"/api/v1/intake/events/{failed['event_id']}/retry").status_code == 404
        assert api_as(org.alice).get("/api/v1/intake/events").json()["items"] == []
        assert api_as(org.pm).post(f"/api/v1/intake/events/{failed['event_id']}/retry").status_code == 403

    def test_bad_mapping_is_refused_with_its_path(self, douyin, org, api_as):
        response = api_as(org.admin).patch(
            f"/api/v1/intake/sources/{douyin.pk}", {"field_mapping": {"fone": "x"}}
        )
        assert response.status_code == 422
        assert "field_mapping.fone" in response.json()["detail"][0]["msg"]


class TestWebForm:
    def test_form_page_creates_a_lead_and_thanks(self, client, web_form):
        page = client.get(f"/f/{web_form.slug}")
        assert page.status_code == 200 and "X-Frame-Options" not in page.headers
        response = client.post(
            f"/f/{web_form.slug}",
            {
                "name": "赵敏",
                "phone": "13911112222",
                "company": "北京云帆",
                "message": "预约演示",
                "submission_id": "s-1",
            },
        )
        assert response.status_code == 200
        assert "提交成功" in response.content.decode()
        lead = Lead.objects.get()
        assert (lead.source, lead.customer.name) == ("web_form", "北京云帆")

    def test_honeypot_swallows_bots_silently(self, client, web_form):
        response = client.post(
            f"/f/{web_form.slug}", {"name": "bot", "phone": "13911112222", "website": "spam.example"}
        )
        assert response.status_code == 200
        assert not InboundEvent.objects.exists()

    def test_missing_fields_are_named(self, client, web_form):
        response = client.post(f"/f/{web_form.slug}", {"name": "", "phone": ""})
        assert response.status_code == 422
        assert "请填写您的称呼" in response.content.decode()

    def test_rate_limit_per_address(self, client, web_form):
        for i in range(5):
            response = client.post(
                f"/hooks/{web_form.slug}",
                json.dumps({"name": f"n{i}", "phone": f"1391111000{i}"}),
                content_type="application/json",
            )
            assert response.status_code == 200
            assert set(response.json()) == {"event_id", "status"}  # no lead id for strangers
        limited = client.post(
            f"/hooks/{web_form.slug}",
            json.dumps({"name": "n", "phone": "13911110009"}),
            content_type="application/json",
        )
        assert limited.status_code == 429
        assert InboundEvent.objects.count() == 5


class TestReports:
    def test_stats_and_duplicate_rate_per_campaign(self, client, douyin, org, api_as):
        # an 82%-style campaign: five arrivals, four of them the same person
        for n in range(4):
            signed_post(client, douyin, clue(n, phone="13800138000"))
        signed_post(client, douyin, clue(9, phone="13800138009", ad_name="双11"))
        signed_post(client, douyin, clue(10, phone="bad"))
        api = api_as(org.director)
        rows = {r["campaign"]: r for r in api.get("/api/v1/intake/duplicates").json()}
        assert rows["618大促"]["touches"] == 3 and rows["618大促"]["created"] == 1
        assert rows["618大促"]["duplicate_rate"] == 0.75
        assert rows["双11"]["duplicate_rate"] == 0.0
        stats = api.get("/api/v1/intake/stats").json()
        mine = next(s for s in stats if s["source_id"] == douyin.pk)
        assert mine["today"] == {"received": 6, "created": 2, "touch": 3, "failed": 1}
        assert mine["days30"] == mine["today"]


class TestReferral:
    def test_a_referral_from_a_customer_keeps_the_referrer(self, org, api_as):
        from tests.factories import lead_make

        existing = lead_make(owner=org.alice)
        api = api_as(org.alice)
        response = api.post(
            f"/api/v1/customers/{existing.customer_id}/referrals",
            {"name": "周芷若", "phone": "13712345678", "company": "深圳峨眉医疗器械有限公司"},
        )
        assert response.status_code == 201, response.content
        lead = Lead.objects.get(pk=response.json()["lead_id"])
        assert (lead.source, lead.referred_by_id) == ("referral", existing.customer_id)
        assert lead.region.name == "华南"  # 137 1234 5678 is a Guangdong number
        bad = api.post(f"/api/v1/customers/{existing.customer_id}/referrals", {"name": "x", "phone": "123"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "phone"

    def test_referrals_only_from_customers_in_scope(self, org, api_as):
        from tests.factories import lead_make

        hidden = lead_make(owner=org.bob)
        response = api_as(org.alice).post(f"/api/v1/customers/{hidden.customer_id}/referrals", {"name": "x"})
        assert response.status_code == 404


class TestMergeSuggestions:
    def test_same_company_and_alike_names_are_suggested_not_merged(self, client, douyin):
        from salesloop.intake.models import MergeSuggestion

        company = {"remark_dict": {"公司名称": "杭州星河新能源科技有限公司"}}
        a = signed_post(client, douyin, clue(1, phone="13900000011", name="王建国", **company)).json()
        b = signed_post(client, douyin, clue(2, phone="13900000012", name="王建华", **company)).json()
        c = signed_post(client, douyin, clue(3, phone="13900000013", name="李娜", **company)).json()
        other = signed_post(
            client, douyin, clue(4, phone="13900000014", name="王建国")
        ).json()  # another company
        assert {a["status"], b["status"], c["status"], other["status"]} == {"created"}
        suggestion = MergeSuggestion.objects.get()
        assert (suggestion.lead_id, suggestion.candidate_id) == (b["lead_id"], a["lead_id"])
        assert suggestion.explanation["kind"] == "merge_suggestion"
        assert suggestion.explanation["company_key"] == "杭州星河新能源科技"
        assert Lead.objects.filter(merged_into__isnull=False).count() == 0
