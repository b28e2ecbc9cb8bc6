from __future__ import annotations

import pytest

from salesloop.core.models import AuditEntry, PersonalDataAccess
from tests.factories import contact_make, lead_make

pytestmark = pytest.mark.django_db


def test_customers_are_scoped_through_leads(org, api_as):
    mine = lead_make(owner=org.alice)
    theirs = lead_make(owner=org.bob)
    api = api_as(org.alice)
    assert [c["id"] for c in api.get("/api/v1/customers").json()["items"]] == [mine.customer_id]
    assert api.get(f"/api/v1/customers/{mine.customer_id}").json()["province"] == "上海"
    assert api.get(f"/api/v1/customers/{theirs.customer_id}").status_code == 404
    assert api.patch(f"/api/v1/customers/{theirs.customer_id}", {"name": "x"}).status_code == 404
    assert len(api_as(org.director).get("/api/v1/customers").json()["items"]) == 2


def test_customer_create_and_update_validate_and_audit(org, api_as):
    api = api_as(org.carol)
    created = api.post("/api/v1/customers", {"name": "宁波海天机械", "province": "33", "size": "200-999"})
    assert created.status_code == 201, created.content
    assert created.json()["province"] == "浙江"
    assert (
        api.post("/api/v1/customers", {"name": "x", "size": "huge"}).json()["detail"][0]["loc"][-1] == "size"
    )
    lead = lead_make(owner=org.alice)
    updated = api.patch(f"/api/v1/customers/{lead.customer_id}", {"industry": "医疗器械"})
    assert updated.json()["industry"] == "医疗器械"
    entry = AuditEntry.objects.get(action="customer.update")
    assert entry.after["industry"] == "医疗器械" and entry.actor == org.carol


def test_contacts_list_masked_detail_unmasked_for_owner_and_logged(org, api_as):
    lead = lead_make(
        owner=org.alice, contact=contact_make(phone="13800138000", wecom_external_id="wmABCDEFG12345")
    )
    api = api_as(org.alice)
    listed = api.get("/api/v1/contacts").json()["items"][0]
    assert (listed["phone"], listed["masked"]) == ("138****8000", True)
    assert listed["wecom_external_id"] == "wmA***345"
    detail = api.get(f"/api/v1/contacts/{lead.contact_id}").json()
    assert (detail["phone"], detail["wecom_external_id"]) == ("+8613800138000", "wmABCDEFG12345")
    assert PersonalDataAccess.objects.filter(actor=org.alice, channel="api").count() == 1
    assert api_as(org.director).get(f"/api/v1/contacts/{lead.contact_id}").json()["phone"] == "138****8000"
    assert api_as(org.bob).get(f"/api/v1/contacts/{lead.contact_id}").status_code == 404
    assert api_as(org.dave).get(f"/api/v1/contacts/{lead.contact_id}").status_code == 404


def test_contact_create_normalises_and_refuses_bad_phone_by_field(org, api_as):
    lead = lead_make(owner=org.alice)
    api = api_as(org.alice)
    bad = api.post("/api/v1/contacts", {"name": "王五", "customer_id": lead.customer_id, "phone": "+86 123"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "phone"
    good = api.post(
        "/api/v1/contacts",
        {"name": "王五", "customer_id": lead.customer_id, "phone": "０１０-６２５５ ８８８８"},
    )
    assert good.status_code == 201, good.content
    assert good.json()["phone"] == "+861062558888"
    patched = api.patch(
        f"/api/v1/contacts/{good.json()['id']}", {"title": "采购经理", "phone": "13912345678"}
    )
    assert (patched.json()["title"], patched.json()["phone"]) == ("采购经理", "+8613912345678")


def test_contact_of_hidden_customer_cannot_be_attached(org, api_as):
    hidden = lead_make(owner=org.bob)
    response = api_as(org.alice).post("/api/v1/contacts", {"name": "x", "customer_id": hidden.customer_id})
    assert response.status_code == 422


def test_me_openapi_and_explanation_schemas(org, api_as, client):
    api = api_as(org.carol)
    me = api.get("/api/v1/me").json()
    assert (me["username"], me["role"], me["region"]["name"]) == ("carol", "manager", "华东")
    spec = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/leads/{lead_id}/moves" in spec["paths"]
    assert "BearerAuth" in spec["components"]["securitySchemes"]
    schemas = api.get("/api/v1/explanations/schemas").json()
    assert schemas["stage_move"]["properties"]["kind"]["const"] == "stage_move"
