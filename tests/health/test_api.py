"""Health endpoints (SPEC C3): scores with breakdowns, the red filter, the configuration's
versions; permissions and out-of-scope 404s for every endpoint."""

from __future__ import annotations

import pytest

from salesloop.core.models import AuditEntry
from salesloop.health.models import HealthModel
from salesloop.health.scoring import DEFAULT_TARGETS, DEFAULT_WEIGHTS, DEFAULT_WINDOWS
from salesloop.health.services import lead_health_changed, model_in_force
from tests.factories import lead_make
from tests.health.conftest import healthy, touch

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(org, now):
    """alice's red lead (one call: 3), her healthy lead (60), and one not scored yet."""
    red = lead_make(owner=org.alice, title="冷线索")
    touch(red)
    lead_health_changed(lead_id=red.pk)
    good = lead_make(owner=org.alice, title="热线索")
    healthy(good)
    lead_health_changed(lead_id=good.pk)
    unknown = lead_make(owner=org.alice, title="新线索")
    return red, good, unknown


class TestLeadHealth:
    def test_the_owner_gets_score_breakdown_and_version(self, org, api_as, scored):
        red, _, _ = scored
        body = api_as(org.alice).get(f"/api/v1/leads/{red.pk}/health").json()
        assert body["score"] == 3 and body["red"] is True and body["red_threshold"] == 40
        assert body["model_version"] == 1 and body["computed_at"]
        assert [s["signal"] for s in body["breakdown"]][:2] == ["contact_frequency", "material_viewing"]
        assert body["breakdown"][0]["contribution"] == 2.5
        assert body["explanation"]["kind"] == "health_score"

    def test_a_lead_without_facts_has_no_score(self, org, api_as, scored):
        body = api_as(org.alice).get(f"/api/v1/leads/{scored[2].pk}/health").json()
        assert body == {**body, "score": None, "red": False, "breakdown": [], "computed_at": None}

    @pytest.mark.parametrize(
        "who,status", [("bob", 404), ("dave", 404), ("erin", 404), ("carol", 200), ("director", 200)]
    )
    def test_scope(self, org, api_as, scored, who, status):
        assert api_as(getattr(org, who)).get(f"/api/v1/leads/{scored[0].pk}/health").status_code == status

    def test_customer_health(self, org, api_as, scored):
        red, good, _ = scored
        body = api_as(org.alice).get(f"/api/v1/customers/{good.customer_id}/health").json()
        assert body["score"] == 60 and body["red"] is False
        assert body["leads"] == [{"lead_id": good.pk, "title": "热线索", "score": 60, "red": False}]
        assert api_as(org.dave).get(f"/api/v1/customers/{red.customer_id}/health").status_code == 404
        assert api_as(org.alice).get("/api/v1/customers/999999/health").status_code == 404


class TestLeadList:
    def test_every_lead_carries_its_score_and_red_flag(self, org, api_as, scored):
        items = api_as(org.alice).get("/api/v1/leads").json()["items"]
        flags = {item["title"]: (item["health_score"], item["health_red"]) for item in items}
        assert flags == {"冷线索": (3, True), "热线索": (60, False), "新线索": (None, False)}

    @pytest.mark.parametrize(
        "value,titles", [("red", ["冷线索"]), ("ok", ["热线索"]), ("unknown", ["新线索"])]
    )
    def test_health_filter(self, org, api_as, scored, value, titles):
        items = api_as(org.carol).get("/api/v1/leads", health=value).json()["items"]
        assert [item["title"] for item in items] == titles

    def test_an_unknown_filter_value_is_a_422(self, org, api_as, scored):
        assert api_as(org.alice).get("/api/v1/leads", health="pink").status_code == 422

    def test_the_red_line_in_force_decides(self, org, api_as, scored):
        model = model_in_force()
        HealthModel.objects.filter(pk=model.pk).update(red_threshold=70)
        items = api_as(org.alice).get("/api/v1/leads", health="red").json()["items"]
        assert sorted(item["title"] for item in items) == ["冷线索", "热线索"]

    def test_the_list_takes_no_extra_query(self, org, api_as, scored, django_assert_num_queries):
        client = api_as(org.director)
        client.get("/api/v1/me")  # the token's first use stamps last_used_at; measure steady state
        with django_assert_num_queries(5):  # as tests/crm/test_api_leads.py pins it
            assert client.get("/api/v1/leads").status_code == 200
        with django_assert_num_queries(5):
            assert client.get("/api/v1/leads", health="red").status_code == 200


def new_version(**changes):
    body = {
        "weights": dict(DEFAULT_WEIGHTS),
        "windows": dict(DEFAULT_WINDOWS),
        "targets": dict(DEFAULT_TARGETS),
        "half_life_days": 21,
        "red_threshold": 35,
        "note": "更看重会议",
    }
    body.update(changes)
    return body


class TestModels:
    def test_the_default_version_is_in_force(self, org, api_as):
        body = api_as(org.director).get("/api/v1/health/models").json()
        assert [(m["version"], m["status"], m["in_force"]) for m in body] == [(1, "published", True)]
        assert body[0]["weights"] == DEFAULT_WEIGHTS and sum(body[0]["weights"].values()) == 100

    @pytest.mark.parametrize("who", ["alice", "carol", "pm"])
    def test_only_directors_and_admins(self, org, api_as, who):
        client = api_as(getattr(org, who))
        assert client.get("/api/v1/health/models").status_code == 403
        assert client.post("/api/v1/health/models", new_version()).status_code == 403
        assert client.post("/api/v1/health/models/1/publish", {}).status_code == 403

    def test_draft_then_publish_is_audited_and_takes_effect(self, org, api_as, scored, now):
        client = api_as(org.admin)
        created = client.post("/api/v1/health/models", new_version())
        assert created.status_code == 201, created.json()
        draft = created.json()
        assert (draft["version"], draft["status"], draft["in_force"]) == (2, "draft", False)
        published = client.post(f"/api/v1/health/models/{draft['id']}/publish", {})
        assert published.status_code == 200
        assert published.json()["in_force"] is True
        assert model_in_force().red_threshold == 35
        actions = list(
            AuditEntry.objects.filter(target_type__icontains="healthmodel").values_list("action", flat=True)
        )
        assert sorted(actions) == ["health.model_create", "health.model_publish"]
        again = client.post(f"/api/v1/health/models/{draft['id']}/publish", {})
        assert again.status_code == 422 and again.json()["detail"][0]["loc"] == ["body", "status"]
        assert client.post("/api/v1/health/models/999/publish", {}).status_code == 404

    def test_publish_at_once(self, org, api_as):
        response = api_as(org.director).post("/api/v1/health/models", new_version(publish=True))
        assert response.status_code == 201 and response.json()["in_force"] is True

    @pytest.mark.parametrize(
        "changes,field",
        [
            ({"weights": {**DEFAULT_WEIGHTS, "budget_progress": 30}}, "weights"),
            (
                {"weights": {k: v for k, v in DEFAULT_WEIGHTS.items() if k != "response_rate"}},
                "weights.response_rate",
            ),
            ({"weights": {**DEFAULT_WEIGHTS, "mood": 0}}, "weights"),
            ({"windows": {**DEFAULT_WINDOWS, "contact_frequency": 0}}, "windows.contact_frequency"),
            ({"windows": {**DEFAULT_WINDOWS, "meeting_attendance": 400}}, "windows.meeting_attendance"),
            ({"targets": {**DEFAULT_TARGETS, "material_viewing": 0}}, "targets.material_viewing"),
            ({"targets": {**DEFAULT_TARGETS, "budget_progress": 2}}, "targets.budget_progress"),
            ({"half_life_days": 0}, "half_life_days"),
            ({"red_threshold": 101}, "red_threshold"),
        ],
    )
    def test_validation_names_the_field(self, org, api_as, changes, field):
        response = api_as(org.director).post("/api/v1/health/models", new_version(publish=True, **changes))
        assert response.status_code == 422
        assert ["body", field] in [error["loc"] for error in response.json()["detail"]]
        assert HealthModel.objects.count() == 1

    def test_a_past_effective_time_is_refused(self, org, api_as, now):
        response = api_as(org.director).post(
            "/api/v1/health/models", new_version(publish=True, effective_at="2020-01-01T00:00:00")
        )
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "effective_at"]
        assert HealthModel.objects.count() == 1


def test_a_scheduled_version_does_not_move_the_red_line_before_its_time(org, api_as, scored, now):
    import datetime as dt

    from salesloop.core import clock

    client = api_as(org.director)
    later = (now + dt.timedelta(days=2)).isoformat()
    response = client.post(
        "/api/v1/health/models", new_version(publish=True, red_threshold=70, effective_at=later)
    )
    assert response.status_code == 201 and response.json()["in_force"] is False
    titles = [item["title"] for item in api_as(org.alice).get("/api/v1/leads", health="red").json()["items"]]
    assert titles == ["冷线索"]
    clock.advance(dt.timedelta(days=3))
    titles = [item["title"] for item in api_as(org.alice).get("/api/v1/leads", health="red").json()["items"]]
    assert sorted(titles) == ["冷线索", "热线索"]
