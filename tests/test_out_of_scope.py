"""Every API endpoint that names a record answers 404 to a user who may not see it — the same
answer as for a record that does not exist, so nothing leaks."""

from __future__ import annotations

import json

import pytest

from salesloop.intake.services import event_receive, source_create
from tests.factories import lead_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def alices(org):
    lead = lead_make(owner=org.alice)
    other = lead_make(owner=org.alice)
    source = source_create(actor=None, kind="api", name="scope", secret="x" * 20)
    outcome = event_receive(
        source=source, body=json.dumps({"id": "e1", "name": "甲", "phone": "13912340000"}), external_id="e1"
    )
    return {"lead": lead, "other": other, "source": source, "event": outcome.event_id}


def endpoints(r):
    lead, other = r["lead"], r["other"]
    return [
        ("get", f"/api/v1/leads/{lead.pk}", None),
        ("patch", f"/api/v1/leads/{lead.pk}", {"title": "x"}),
        ("post", f"/api/v1/leads/{lead.pk}/moves", {"to_stage": "needs_confirmed"}),
        ("get", f"/api/v1/leads/{lead.pk}/timeline", None),
        ("get", f"/api/v1/leads/{lead.pk}/arrivals", None),
        ("post", f"/api/v1/leads/{lead.pk}/merge", {"merged_lead_id": other.pk}),
        ("post", f"/api/v1/leads/{lead.pk}/unmerge", {}),
        ("get", f"/api/v1/customers/{lead.customer_id}", None),
        ("patch", f"/api/v1/customers/{lead.customer_id}", {"name": "x"}),
        ("post", f"/api/v1/customers/{lead.customer_id}/referrals", {"name": "x"}),
        ("get", f"/api/v1/contacts/{lead.contact_id}", None),
        ("patch", f"/api/v1/contacts/{lead.contact_id}", {"title": "x"}),
    ]


@pytest.mark.parametrize("outsider", ["bob", "erin", "dave"])
def test_records_of_another_scope_are_404_on_every_endpoint(org, api_as, alices, outsider):
    api = api_as(getattr(org, outsider))
    for method, path, body in endpoints(alices):
        response = getattr(api, method)(path, body) if body is not None else getattr(api, method)(path)
        assert response.status_code == 404, (method, path, response.status_code, response.content)


def test_missing_records_answer_exactly_like_hidden_ones(org, api_as, alices):
    api = api_as(org.bob)
    hidden = api.get(f"/api/v1/leads/{alices['lead'].pk}")
    missing = api.get("/api/v1/leads/987654321")
    assert (hidden.status_code, hidden.json()) == (missing.status_code, missing.json())


@pytest.mark.parametrize("outsider", ["alice", "bob"])
def test_reps_see_no_intake_configuration_or_events(org, api_as, alices, outsider):
    api = api_as(getattr(org, outsider))
    assert api.get(f"/api/v1/intake/sources/{alices['source'].pk}").status_code == 404
    assert api.patch(f"/api/v1/intake/sources/{alices['source'].pk}", {"name": "x"}).status_code == 404
    assert api.get(f"/api/v1/intake/events/{alices['event']}").status_code == 404
    assert api.post(f"/api/v1/intake/events/{alices['event']}/retry").status_code == 404


def test_a_manager_sees_events_of_their_region_only(org, api_as, alices):
    # the event's lead is a pool lead from Shanghai (华东): carol sees it, dave does not
    assert api_as(org.carol).get(f"/api/v1/intake/events/{alices['event']}").status_code == 200
    assert api_as(org.dave).get(f"/api/v1/intake/events/{alices['event']}").status_code == 404
