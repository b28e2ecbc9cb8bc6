from __future__ import annotations

from decimal import Decimal

import pytest

from salesloop.core.models import AuditEntry, PersonalDataAccess
from salesloop.crm.models import Lead
from tests.factories import contact_make, customer_make, lead_make

pytestmark = pytest.mark.django_db


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["items"]]


class TestLeadList:
    def test_it_lists_only_the_callers_scope(self, org, api_as):
        mine = lead_make(owner=org.alice)
        lead_make(owner=org.bob)
        lead_make(owner=org.erin, province="44")

        assert ids(api_as(org.alice).get("/api/v1/leads")) == [mine.pk]
        assert len(ids(api_as(org.carol).get("/api/v1/leads"))) == 2
        assert len(ids(api_as(org.director).get("/api/v1/leads"))) == 3

    def test_filters_narrow_the_list(self, org, api_as):
        from salesloop.pipeline.models import Stage
        from salesloop.pipeline.services import lead_move_stage

        a = lead_make(owner=org.alice, source="douyin")
        b = lead_make(owner=org.bob, source="web_form")
        c = lead_make(owner=None, province="44", source="douyin")
        lead_move_stage(actor=org.alice, lead=a, to_stage=Stage.objects.get(code="needs_confirmed"))
        lead_move_stage(actor=org.bob, lead=b, status="lost", reason="预算不足")
        api = api_as(org.director)

        assert ids(api.get("/api/v1/leads", stage="needs_confirmed")) == [a.pk]
        assert ids(api.get("/api/v1/leads", owner=org.bob.pk)) == [b.pk]
        assert ids(api.get("/api/v1/leads", region=org.south.pk)) == [c.pk]
        assert ids(api.get("/api/v1/leads", source="douyin")) == [c.pk, a.pk]
        assert ids(api.get("/api/v1/leads", status="lost")) == [b.pk]
        assert ids(api.get("/api/v1/leads", unassigned="true")) == [c.pk]

    def test_text_filter_finds_company_and_phone_digits(self, org, api_as):
        customer = customer_make(name="杭州星河新能源有限公司")
        target = lead_make(
            owner=org.alice, customer=customer, contact=contact_make(customer=customer, phone="13957112345")
        )
        lead_make(owner=org.alice)
        api = api_as(org.alice)
        assert ids(api.get("/api/v1/leads", q="星河")) == [target.pk]
        assert ids(api.get("/api/v1/leads", q="5711 2345")) == [target.pk]

    def test_keyset_pages_visit_every_lead_once(self, org, api_as):
        made = [lead_make(owner=org.alice).pk for _ in range(7)]
        api = api_as(org.alice)
        seen: list[int] = []
        cursor = None
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            body = api.get("/api/v1/leads", **params).json()
            seen += [item["id"] for item in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == sorted(made, reverse=True)

    def test_list_masks_every_phone_and_logs_nothing(self, org, api_as):
        lead_make(owner=org.alice, contact=contact_make(phone="13800138000"))
        body = api_as(org.alice).get("/api/v1/leads").json()
        assert body["items"][0]["contact"]["phone"] == "138****8000"
        assert body["items"][0]["contact"]["masked"] is True
        assert not PersonalDataAccess.objects.exists()

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"owner": "abc"}, "owner"),
            ({"limit": 0}, "limit"),
            ({"limit": 500}, "limit"),
            ({"stage": "nope"}, "stage"),
            ({"status": "maybe"}, "status"),
            ({"source": "fax"}, "source"),
            ({"cursor": "garbage!"}, "cursor"),
            ({"owner": 2**70}, "owner"),
            ({"q": "x" * 101}, "q"),
            ({"q": "a\x00b"}, "q"),
        ],
    )
    def test_bad_filters_are_422_naming_the_field(self, org, api_as, params, field):
        response = api_as(org.alice).get("/api/v1/leads", **params)
        assert response.status_code == 422, response.content
        assert [field] == [d["loc"][-1] for d in response.json()["detail"]]

    def test_list_takes_a_fixed_number_of_queries(self, org, api_as, django_assert_num_queries):
        api = api_as(org.carol)
        api.get("/api/v1/me")  # the token's first use stamps last_used_at; measure steady state
        for _ in range(3):
            lead_make(owner=org.alice)
        # token lookup + the page + its stages, regions and provinces by id
        with django_assert_num_queries(5):
            assert len(ids(api.get("/api/v1/leads"))) == 3
        for _ in range(20):
            lead_make(owner=org.bob)
        with django_assert_num_queries(5):
            assert len(ids(api.get("/api/v1/leads"))) == 23
        with django_assert_num_queries(6):  # + resolving the stage code
            api.get("/api/v1/leads", stage="screening")

    def test_it_requires_authentication(self, client, org):
        assert client.get("/api/v1/leads").status_code == 401
        response = client.get("/api/v1/leads", headers={"Authorization": "Bearer sl_not-a-token"})
        assert response.status_code == 401

    def test_session_auth_works_for_browsers(self, client, org):
        lead_make(owner=org.alice)
        client.force_login(org.alice)
        assert len(client.get("/api/v1/leads").json()["items"]) == 1


class TestLeadDetail:
    def test_owner_sees_unmasked_contact_and_the_view_is_logged(self, org, api_as):
        lead = lead_make(owner=org.alice, contact=contact_make(phone="13800138000"))
        body = api_as(org.alice).get(f"/api/v1/leads/{lead.pk}").json()
        assert body["contact"]["phone"] == "+8613800138000"
        access = PersonalDataAccess.objects.get()
        assert (access.actor, access.channel, access.fields) == (org.alice, "api", ["phone"])

    def test_owners_manager_and_admin_see_it_unmasked_director_masked(self, org, api_as):
        lead = lead_make(owner=org.alice, contact=contact_make(phone="13800138000"))
        for user, expected in [
            (org.carol, "+8613800138000"),
            (org.admin, "+8613800138000"),
            (org.director, "138****8000"),
            (org.pm, "138****8000"),
        ]:
            assert api_as(user).get(f"/api/v1/leads/{lead.pk}").json()["contact"]["phone"] == expected
        assert PersonalDataAccess.objects.count() == 2

    @pytest.mark.parametrize("who", ["bob", "erin", "dave"])
    def test_out_of_scope_is_404(self, org, api_as, who):
        lead = lead_make(owner=org.alice)
        api = api_as(getattr(org, who))
        for path in (f"/api/v1/leads/{lead.pk}", f"/api/v1/leads/{lead.pk}/timeline"):
            assert api.get(path).status_code == 404
        assert api.patch(f"/api/v1/leads/{lead.pk}", {"title": "x"}).status_code == 404
        assert api.post(f"/api/v1/leads/{lead.pk}/moves", {"to_stage": "needs_confirmed"}).status_code == 404
        assert Lead.objects.get(pk=lead.pk).title != "x"

    def test_missing_lead_is_404_like_a_hidden_one(self, org, api_as):
        assert api_as(org.admin).get("/api/v1/leads/999999").status_code == 404

    def test_detail_takes_a_fixed_number_of_queries(self, org, api_as, django_assert_num_queries):
        lead = lead_make(owner=None, contact=None)
        lead.contact = None
        lead.save()
        api = api_as(org.director)
        api.get("/api/v1/me")
        with django_assert_num_queries(2):  # token + the lead with its relations
            assert api.get(f"/api/v1/leads/{lead.pk}").status_code == 200


class TestLeadCreate:
    def test_rep_creates_a_lead_with_new_customer_and_contact(self, org, api_as):
        response = api_as(org.alice).post(
            "/api/v1/leads",
            {
                "customer": {
                    "name": "苏州精工设备有限公司",
                    "industry": "工业设备",
                    "province": "江苏省",
                    "size": "50-199",
                },
                "contact": {"name": "李雷", "phone": "+86 139-1234-5678", "email": "LI@Example.com"},
                "source": "referral",
                "expected_amount": "880000.00",
            },
        )
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["owner"]["username"] == "alice"
        assert body["region"]["name"] == "华东"
        assert body["stage"]["code"] == "screening"
        assert body["contact"]["phone"] == "+8613912345678"
        assert body["contact"]["email"] == "li@example.com"
        assert body["expected_amount"] == "880000.00"
        lead = Lead.objects.get(pk=body["id"])
        assert lead.expected_amount == Decimal("880000.00")
        assert lead.moves.count() == 1
        assert AuditEntry.objects.filter(action="lead.create", target_id=str(lead.pk)).exists()

    def test_manager_creates_into_the_pool_or_for_their_rep_only(self, org, api_as):
        api = api_as(org.carol)
        pool = api.post("/api/v1/leads", {"customer": {"name": "甲公司", "province": "上海"}})
        assert pool.status_code == 201 and pool.json()["owner"] is None
        theirs = api.post("/api/v1/leads", {"customer": {"name": "乙公司"}, "owner_id": org.bob.pk})
        assert theirs.json()["owner"]["username"] == "bob"
        other = api.post("/api/v1/leads", {"customer": {"name": "丙公司"}, "owner_id": org.erin.pk})
        assert other.status_code == 422
        assert other.json()["detail"][0]["loc"][-1] == "owner_id"

    def test_rep_cannot_create_for_someone_else(self, org, api_as):
        response = api_as(org.alice).post(
            "/api/v1/leads", {"customer": {"name": "甲"}, "owner_id": org.bob.pk}
        )
        assert response.status_code == 422
        assert not Lead.objects.exists()

    def test_product_manager_cannot_create(self, org, api_as):
        assert api_as(org.pm).post("/api/v1/leads", {"customer": {"name": "甲"}}).status_code == 403

    def test_someone_elses_customer_is_refused_as_unknown(self, org, api_as):
        hidden = lead_make(owner=org.bob)
        response = api_as(org.alice).post("/api/v1/leads", {"customer_id": hidden.customer_id})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][-1] == "customer_id"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "customer"),
            ({"customer": {"name": ""}}, "name"),
            ({"customer": {"name": "甲", "province": "火星"}}, "province"),
            ({"customer": {"name": "甲"}, "contact": {"name": "张", "phone": "12345"}}, "phone"),
            ({"customer": {"name": "甲"}, "contact": {"name": "张", "email": "nope"}}, "email"),
            ({"customer": {"name": "甲"}, "expected_amount": "-1"}, "expected_amount"),
            ({"customer": {"name": "甲"}, "expected_amount": "1e20"}, "expected_amount"),
            ({"customer": {"name": "甲"}, "expected_amount": "abc"}, "expected_amount"),
            ({"customer": {"name": "甲"}, "source": "fax"}, "source"),
            ({"customer": {"name": "甲\x00"}}, "name"),
            ({"customer": {"name": "甲"}, "owner_id": 10**30}, "owner_id"),
        ],
    )
    def test_bad_input_is_422_naming_the_field_and_nothing_is_created(self, org, api_as, body, field):
        response = api_as(org.alice).post("/api/v1/leads", body)
        assert response.status_code == 422, response.content
        assert field in [d["loc"][-1] for d in response.json()["detail"]]
        assert not Lead.objects.exists()

    def test_not_json_is_a_clear_error(self, org, client):
        from salesloop.accounts.services import token_create

        _, token = token_create(actor=None, user=org.alice)
        response = client.post(
            "/api/v1/leads",
            "{not json",
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert 400 <= response.status_code < 500


class TestLeadUpdate:
    def test_update_is_audited_with_before_and_after(self, org, api_as):
        lead = lead_make(owner=org.alice, expected_amount=Decimal("100"))
        response = api_as(org.alice).patch(
            f"/api/v1/leads/{lead.pk}", {"expected_amount": "250.5", "title": "新标题"}
        )
        assert response.status_code == 200, response.content
        entry = AuditEntry.objects.get(action="lead.update")
        assert entry.before["expected_amount"] == "100.00"
        assert entry.after["expected_amount"] == "250.50"
        assert entry.actor == org.alice

    def test_manager_reassigns_within_region_rep_cannot(self, org, api_as):
        lead = lead_make(owner=org.alice)
        assert (
            api_as(org.alice).patch(f"/api/v1/leads/{lead.pk}", {"owner_id": org.bob.pk}).status_code == 403
        )
        refused = api_as(org.carol).patch(f"/api/v1/leads/{lead.pk}", {"owner_id": org.bob.pk})
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"][-1] == "assignment_reason"
        response = api_as(org.carol).patch(
            f"/api/v1/leads/{lead.pk}", {"owner_id": org.bob.pk, "assignment_reason": "Alice 休产假"}
        )
        assert response.json()["owner"]["username"] == "bob"
        trace = api_as(org.carol).get(f"/api/v1/leads/{lead.pk}/assignment").json()["current"]
        assert trace["method"] == "manual" and trace["reason"] == "Alice 休产假"
        assert trace["actor"]["id"] == org.carol.pk and trace["previous_owner_id"] == org.alice.pk
        assert (
            api_as(org.carol)
            .patch(f"/api/v1/leads/{lead.pk}", {"owner_id": org.erin.pk, "assignment_reason": "x"})
            .status_code
            == 422
        )

    def test_product_manager_sees_but_cannot_change(self, org, api_as):
        lead = lead_make(owner=org.alice)
        assert api_as(org.pm).patch(f"/api/v1/leads/{lead.pk}", {"title": "x"}).status_code == 403

    def test_null_title_is_refused(self, org, api_as):
        lead = lead_make(owner=org.alice)
        response = api_as(org.alice).patch(f"/api/v1/leads/{lead.pk}", {"title": None})
        assert response.status_code == 422
