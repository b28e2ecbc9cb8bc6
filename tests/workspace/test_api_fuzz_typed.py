"""No input may produce a 500 with custom fields defined: schemathesis generates lead and customer
bodies from the document as it is *now*, with every custom field typed (tests/test_api_fuzz.py
loads the document once, before any field exists)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode

from salesloop.accounts.services import token_create
from tests.factories import lead_make

pytestmark = pytest.mark.django_db
OPERATIONS = [
    ("/api/v1/leads/{lead_id}", "PATCH"),
    ("/api/v1/leads", "POST"),
    ("/api/v1/customers", "POST"),
    ("/api/v1/leads", "GET"),
]


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_typed_custom_fields_never_produce_a_server_error(client, org, fields, path, method, mode):
    lead = lead_make(owner=org.alice, custom_fields={"tier": "a"})
    token = token_create(actor=None, user=org.alice)[1]
    document = json.loads(client.get("/api/v1/openapi.json").content)
    assert "tier" in document["components"]["schemas"]["LeadCustomFieldsPatch"]["properties"]
    operation = schemathesis.openapi.from_dict(document)[path][method]
    strategy = operation.as_strategy(generation_mode=mode, path_parameters={"lead_id": lead.pk})

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(case=strategy)
    def check(case) -> None:
        query = f"?{urlencode(case.query, doseq=True)}" if case.query else ""
        if case.method == "GET":
            body = ""
        elif isinstance(case.body, bytes | str):
            body = case.body
        else:
            body = json.dumps(case.body)
        response = client.generic(
            case.method,
            case.formatted_path + query,
            body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code < 500, (case.body, response.content[:500])

    check()
