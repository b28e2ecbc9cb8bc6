"""C10.1 through the API: definitions (admins), custom values on leads and customers, typed OpenAPI,
and the lead list's custom filters."""

from __future__ import annotations

import pytest

from salesloop.crm.models import Customer, Lead
from salesloop.workspace.models import CustomField
from tests.factories import lead_make
from tests.workspace.conftest import CHOICES, field_make

pytestmark = pytest.mark.django_db


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["items"]]


def errors(response) -> dict[str, str]:
    assert response.status_code == 422, response.content
    return {".".join(str(p) for p in e["loc"][1:]): e["msg"] for e in response.json()["detail"]}


# --- definitions ----------------------------------------------------------------------------


def test_an_admin_defines_changes_and_archives_a_field(org, api_as):
    api = api_as(org.admin)
    created = api.post(
        "/api/v1/custom-fields",
        {
            "entity": "lead",
            "name": "tier",
            "label_zh": "等级",
            "label_en": "Tier",
            "field_type": "choice",
            "choices": CHOICES,
            "validation": {"required": False},
        },
    )
    assert created.status_code == 201, created.content
    field_id = created.json()["id"]
    changed = api.patch(f"/api/v1/custom-fields/{field_id}", {"label_zh": "客户等级"})
    assert changed.status_code == 200 and changed.json()["label_zh"] == "客户等级"
    assert api.patch(f"/api/v1/custom-fields/{field_id}", {"label_zh": None}).status_code == 422
    archived = api.post(f"/api/v1/custom-fields/{field_id}/archive")
    assert archived.json()["archived"] is True
    assert api.post(f"/api/v1/custom-fields/{field_id}/restore").json()["archived"] is False
    listed = api_as(org.alice).get("/api/v1/custom-fields", entity="lead")
    assert [f["name"] for f in listed.json()] == ["tier"]


@pytest.mark.parametrize("persona", ["alice", "carol", "director", "pm"])
def test_others_may_read_but_not_define_fields(org, api_as, persona):
    field = field_make(org.admin, "tier", "choice", choices=CHOICES)
    api = api_as(getattr(org, persona))
    body = {"entity": "lead", "name": "x", "label_zh": "x", "field_type": "text"}
    assert api.post("/api/v1/custom-fields", body).status_code == 403
    assert api.patch(f"/api/v1/custom-fields/{field.pk}", {"label_zh": "y"}).status_code == 403
    assert api.post(f"/api/v1/custom-fields/{field.pk}/archive").status_code == 403
    assert api.get(f"/api/v1/custom-fields/{field.pk}").status_code == 200
    assert not CustomField.objects.filter(name="x").exists()


def test_a_missing_field_is_a_404(org, api_as):
    assert api_as(org.admin).patch("/api/v1/custom-fields/999999", {"label_zh": "y"}).status_code == 404


def test_a_bad_definition_is_a_422_naming_the_key(org, api_as):
    api = api_as(org.admin)
    body = {"entity": "lead", "name": "Bad Name", "label_zh": "x", "field_type": "text"}
    assert "name" in errors(api.post("/api/v1/custom-fields", body))
    field_make(org.admin, "size", "text")
    lead_make(owner=org.alice, custom_fields={"size": "大型"})
    field_id = CustomField.objects.get(name="size").pk
    assert "field_type" in errors(api.patch(f"/api/v1/custom-fields/{field_id}", {"field_type": "number"}))


# --- values on leads and customers ----------------------------------------------------------


def test_a_lead_is_created_and_changed_with_custom_values(org, api_as, fields):
    api = api_as(org.alice)
    created = api.post(
        "/api/v1/leads",
        {
            "title": "新线索",
            "customer": {"name": "上海云启科技有限公司", "province": "31", "custom_fields": {"credit": "a"}},
            "custom_fields": {"seats": "30", "budget": 1200, "tags": ["b", "a"], "decision_on": "2026-12-01"},
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["custom_fields"] == {
        "seats": 30,
        "budget": "1200.00",
        "tags": ["a", "b"],
        "decision_on": "2026-12-01",
    }
    assert body["customer"]["custom_fields"] == {"credit": "a"}
    lead_id = body["id"]
    changed = api.patch(f"/api/v1/leads/{lead_id}", {"custom_fields": {"seats": None, "tier": "c"}})
    assert changed.status_code == 200, changed.content
    assert changed.json()["custom_fields"] == {
        "budget": "1200.00",
        "tags": ["a", "b"],
        "decision_on": "2026-12-01",
        "tier": "c",
    }
    assert api.get(f"/api/v1/leads/{lead_id}").json()["custom_fields"]["tier"] == "c"
    listed = api.get("/api/v1/leads").json()["items"]
    assert listed[0]["custom_fields"]["tier"] == "c"


def test_bad_custom_values_are_a_422_naming_each_field(org, api_as, fields):
    api = api_as(org.alice)
    lead = lead_make(owner=org.alice)
    found = errors(
        api.patch(f"/api/v1/leads/{lead.pk}", {"custom_fields": {"seats": "many", "colour": "red"}})
    )
    assert set(found) == {"custom_fields.seats", "custom_fields.colour"}
    assert "no such custom field" in found["custom_fields.colour"]
    assert Lead.objects.get(pk=lead.pk).custom_fields == {}


def test_required_fields_are_needed_when_a_person_creates_a_lead(org, api_as, fields):
    from salesloop.workspace.services import custom_field_update

    custom_field_update(actor=org.admin, field=fields["tier"], validation={"required": True})
    api = api_as(org.alice)
    customer = {"name": "南京某公司", "province": "32"}
    found = errors(api.post("/api/v1/leads", {"customer": customer}))
    assert found == {"custom_fields.tier": "required"}
    assert (
        api.post("/api/v1/leads", {"customer": customer, "custom_fields": {"tier": "a"}}).status_code == 201
    )


def test_customer_custom_values_by_the_customer_endpoints(org, api_as, fields):
    api = api_as(org.director)
    created = api.post("/api/v1/customers", {"name": "某客户", "custom_fields": {"credit": "b"}})
    assert created.status_code == 201 and created.json()["custom_fields"] == {"credit": "b"}
    customer_id = created.json()["id"]
    assert "custom_fields.credit" in errors(
        api.patch(f"/api/v1/customers/{customer_id}", {"custom_fields": {"credit": "z"}})
    )
    assert (
        api.patch(f"/api/v1/customers/{customer_id}", {"custom_fields": {"credit": None}}).json()[
            "custom_fields"
        ]
        == {}
    )
    assert Customer.objects.get(pk=customer_id).custom_fields == {}


def test_an_archived_fields_value_is_kept_and_shown_but_not_changed(org, api_as, fields):
    from salesloop.workspace.services import custom_field_archive

    lead = lead_make(owner=org.alice, custom_fields={"tier": "a"})
    custom_field_archive(actor=org.admin, field=fields["tier"])
    api = api_as(org.alice)
    assert api.get(f"/api/v1/leads/{lead.pk}").json()["custom_fields"] == {"tier": "a"}
    assert "custom_fields.tier" in errors(
        api.patch(f"/api/v1/leads/{lead.pk}", {"custom_fields": {"tier": "b"}})
    )


# --- typed OpenAPI --------------------------------------------------------------------------


def openapi(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def test_a_new_field_appears_typed_in_the_openapi_document_without_a_restart(org, client, fields):
    before = openapi(client)["components"]["schemas"]
    assert "rating" not in before["LeadCustomFields"]["properties"]
    field_make(org.admin, "rating", "number", validation={"min": 1, "max": 5})
    schemas = openapi(client)["components"]["schemas"]
    lead_out = schemas["LeadCustomFields"]["properties"]
    assert lead_out["rating"]["type"] == "number"
    assert lead_out["rating"]["minimum"] == 1 and lead_out["rating"]["maximum"] == 5
    assert lead_out["seats"]["type"] == "number"
    assert lead_out["budget"]["type"] == "string" and lead_out["budget"]["format"] == "decimal"
    assert lead_out["tier"] == {**lead_out["tier"], "type": "string", "enum": ["a", "b", "c"]}
    assert lead_out["tags"]["type"] == "array" and lead_out["tags"]["items"]["enum"] == ["a", "b", "c"]
    assert lead_out["decision_on"]["format"] == "date"
    assert lead_out["site"]["format"] == "uri"
    assert lead_out["code"]["maxLength"] == 8 and lead_out["code"]["pattern"] == r"[A-Z]{2}\d+"
    assert lead_out["contract"]["type"] == "integer"
    assert "credit" not in lead_out
    assert schemas["CustomerCustomFields"]["properties"]["credit"]["enum"] == ["a", "b", "c"]
    assert (
        schemas["LeadOut"]["properties"]["custom_fields"]["$ref"] == "#/components/schemas/LeadCustomFields"
    )
    assert schemas["LeadCustomFieldsIn"]["additionalProperties"] is False
    assert schemas["CustomerOut"]["properties"]["custom_fields"]["$ref"].endswith("/CustomerCustomFields")
    patch = schemas["LeadPatch"]["properties"]["custom_fields"]["anyOf"][0]["$ref"]
    assert patch.endswith("/LeadCustomFieldsPatch")


def test_archived_fields_are_read_only_in_the_document(org, client, fields):
    from salesloop.workspace.services import custom_field_archive

    custom_field_archive(actor=org.admin, field=fields["tier"])
    schemas = openapi(client)["components"]["schemas"]
    assert schemas["LeadCustomFields"]["properties"]["tier"]["readOnly"] is True
    assert "tier" not in schemas["LeadCustomFieldsIn"]["properties"]


# --- list filters ---------------------------------------------------------------------------


@pytest.fixture
def filtered_leads(org, fields):
    return {
        "small": lead_make(
            owner=org.alice,
            custom_fields={
                "seats": 5,
                "budget": "900.50",
                "tier": "a",
                "tags": ["a"],
                "decision_on": "2026-01-10",
                "code": "AB1",
            },
        ),
        "large": lead_make(
            owner=org.alice,
            custom_fields={
                "seats": 500,
                "budget": "120000.00",
                "tier": "b",
                "tags": ["b", "c"],
                "decision_on": "2026-06-01",
                "code": "XY22",
            },
        ),
        "blank": lead_make(owner=org.alice),
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"cf.tier": "a"}, ["small"]),
        ({"cf.seats.min": "10"}, ["large"]),
        ({"cf.seats.max": "5"}, ["small"]),
        ({"cf.seats": "500"}, ["large"]),
        ({"cf.budget.min": "1000", "cf.budget.max": "200000"}, ["large"]),
        ({"cf.budget.max": "900.50"}, ["small"]),
        ({"cf.decision_on.min": "2026-02-01"}, ["large"]),
        ({"cf.decision_on.max": "2026-01-10"}, ["small"]),
        ({"cf.tags": "c"}, ["large"]),
        ({"cf.tags": "a"}, ["small"]),
        ({"cf.code": "xy"}, ["large"]),
        ({"cf.tier": "a", "cf.seats.min": "100"}, []),
        ({"cf.seats.min": ""}, ["blank", "large", "small"]),
    ],
)
def test_the_api_list_filters_on_custom_fields(org, api_as, filtered_leads, params, expected):
    found = ids(api_as(org.alice).get("/api/v1/leads", **params))
    assert found == [
        filtered_leads[name].pk for name in sorted(expected, key=lambda n: -filtered_leads[n].pk)
    ]


@pytest.mark.parametrize(
    ("params", "location"),
    [
        ({"cf.colour": "red"}, "cf.colour"),
        ({"cf.seats.min": "many"}, "cf.seats.min"),
        ({"cf.tier": "z"}, "cf.tier"),
        ({"cf.tier.min": "a"}, "cf.tier.min"),
        ({"cf.seats.avg": "1"}, "cf.seats.avg"),
        ({"cf.decision_on.min": "2026-13-01"}, "cf.decision_on.min"),
        ({"cf.contract": "maybe"}, "cf.contract"),
    ],
)
def test_a_bad_custom_filter_is_a_422_naming_it(org, api_as, fields, params, location):
    response = api_as(org.alice).get("/api/v1/leads", **params)
    assert response.status_code == 422, response.content
    assert response.json()["detail"][0]["loc"] == ["query", location]


def test_custom_filters_keep_the_scope(org, api_as, fields):
    lead_make(owner=org.bob, custom_fields={"tier": "a"})
    mine = lead_make(owner=org.alice, custom_fields={"tier": "a"})
    assert ids(api_as(org.alice).get("/api/v1/leads", **{"cf.tier": "a"})) == [mine.pk]


def test_keyset_pages_with_a_custom_filter(org, api_as, fields):
    made = [lead_make(owner=org.alice, custom_fields={"tier": "a"}).pk for _ in range(5)]
    lead_make(owner=org.alice, custom_fields={"tier": "b"})
    api = api_as(org.alice)
    seen, cursor = [], None
    while True:
        params = {"cf.tier": "a", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/api/v1/leads", **params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(made, reverse=True)


def test_a_custom_filter_costs_one_query_more(org, api_as, fields):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(**params) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert len(ids(api.get("/api/v1/leads", **params))) == 3
        return len(captured)

    for _ in range(3):
        lead_make(owner=org.alice, custom_fields={"tier": "a"})
    api = api_as(org.alice)
    queries()  # the first request of a token also records its use
    plain = queries()  # tests/crm/test_api_leads.py pins this one
    assert queries(**{"cf.tier": "a"}) == plain + 1  # + the definitions
