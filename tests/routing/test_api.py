"""C8 item 7: the routing API — rule sets (create, list, get, edit, publish, cancel), rollback, the
policy, and a lead's assignment (read the trace, reassign by hand)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings

from salesloop.core import clock
from salesloop.routing.models import ReportKind, ReportStatus, RoutingReport
from salesloop.routing.services import lead_route
from tests.factories import lead_make
from tests.routing.conftest import definition, in_force, rule

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 2, 2, 0, tzinfo=dt.UTC)


class TestRuleSets:
    def test_a_director_drafts_edits_and_publishes_through_the_api(self, org, api_as):
        clock.set_now(T0)
        api = api_as(org.director)
        created = api.post(
            "/api/v1/routing/rulesets", {"definition": definition(rule("east", 10, regions=["east"]))}
        )
        assert created.status_code == 201, created.content
        draft = created.json()
        assert draft["status"] == "draft" and draft["version"] == 1 and not draft["in_force"]
        edited = api.patch(
            f"/api/v1/routing/rulesets/{draft['id']}",
            {
                "definition": definition(
                    rule("east", 10, regions=["east"]), rule("south", 5, regions=["south"])
                )
            },
        )
        assert edited.status_code == 200 and len(edited.json()["definition"]["rules"]) == 2
        refused = api.post(f"/api/v1/routing/rulesets/{draft['id']}/publish", {})
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "report"]
        RoutingReport.objects.create(ruleset_id=draft["id"], kind=ReportKind.REPLAY, status=ReportStatus.DONE)
        published = api.post(f"/api/v1/routing/rulesets/{draft['id']}/publish", {"note": "按区域"})
        assert published.status_code == 200, published.content
        assert published.json()["status"] == "published"
        assert published.json()["effective_at"].startswith("2026-11-04T02:00")
        assert [r["version"] for r in api.get("/api/v1/routing/rulesets").json()] == [1]

    def test_an_invalid_document_is_a_422_with_the_path_in_the_location(self, org, api_as):
        bad = definition(rule("east", 10, users=["nobody"]))
        response = api_as(org.director).post("/api/v1/routing/rulesets", {"definition": bad})
        assert response.status_code == 422
        assert response.json()["detail"] == [
            {"loc": ["body", "definition.rules[0].pool.users[0]"], "msg": "no user 'nobody'"}
        ]

    def test_the_document_schema_is_served(self, org, api_as):
        schema = api_as(org.alice).get("/api/v1/routing/rulesets/schema").json()
        assert "fallback" in schema["required"] and "rules" in schema["properties"]

    def test_reps_read_the_rules_in_force_but_not_drafts_and_cannot_write(self, org, api_as):
        live = in_force(org.admin, definition(rule("east", 10, regions=["east"])))
        draft = api_as(org.director).post("/api/v1/routing/rulesets", {"definition": definition()}).json()
        rep = api_as(org.alice)
        assert [r["id"] for r in rep.get("/api/v1/routing/rulesets").json()] == [live.pk]
        assert rep.get(f"/api/v1/routing/rulesets/{live.pk}").json()["in_force"] is True
        assert rep.get(f"/api/v1/routing/rulesets/{draft['id']}").status_code == 404
        assert rep.post("/api/v1/routing/rulesets", {"definition": definition()}).status_code == 403
        assert rep.get("/api/v1/routing/rulesets/999999").status_code == 404

    def test_rollback_needs_an_admin_and_a_reason(self, org, api_as):
        in_force(org.admin, definition(), since=dt.timedelta(days=3))
        second = in_force(org.admin, definition(rule("east", 10, regions=["east"])))
        assert api_as(org.director).post("/api/v1/routing/rollback", {"reason": "x"}).status_code == 403
        assert api_as(org.admin).post("/api/v1/routing/rollback", {}).status_code == 422
        response = api_as(org.admin).post("/api/v1/routing/rollback", {"reason": "投诉激增"})
        assert response.status_code == 200
        assert response.json()["id"] == second.pk and response.json()["status"] == "rolled_back"

    def test_policy_is_read_by_managers_and_changed_by_admins(self, org, api_as):
        assert api_as(org.alice).get("/api/v1/routing/policy").status_code == 403
        assert api_as(org.carol).get("/api/v1/routing/policy").json()["notice_hours"] == 48
        assert api_as(org.director).patch("/api/v1/routing/policy", {"notice_hours": 1}).status_code == 403
        changed = api_as(org.admin).patch(
            "/api/v1/routing/policy", {"notice_hours": 24, "committee": [org.carol.pk]}
        )
        assert changed.json()["notice_hours"] == 24 and changed.json()["committee"] == [org.carol.pk]
        bad = api_as(org.admin).patch("/api/v1/routing/policy", {"committee": [987654]})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "committee"]


class TestLeadAssignment:
    def test_the_rep_reads_why_the_lead_is_theirs(self, org, api_as):
        in_force(org.admin, definition(rule("east", 10, regions=["east"])))
        lead = lead_make()
        lead_route(lead=lead)
        lead.refresh_from_db()
        owner = org.alice if lead.owner_id == org.alice.pk else org.bob
        body = api_as(owner).get(f"/api/v1/leads/{lead.pk}/assignment").json()
        current = body["current"]
        assert current["assignee"]["id"] == owner.pk and current["method"] == "rule"
        assert current["rule_id"] == "east" and current["ruleset_version"] == 1
        names = {c["name"] for c in current["explanation"]["rules"][0]["candidates"]}
        assert names == {"Alice 王", "bob"}
        assert any("规则 east" in line for line in current["summary"])  # Chinese by default

    def test_the_trace_is_in_english_for_an_english_reader(self, org, api_as):
        in_force(org.admin, definition(rule("east", 10, regions=["east"])))
        lead = lead_make()
        lead_route(lead=lead)
        api = api_as(org.carol)
        api.client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # the language control's choice
        summary = api.get(f"/api/v1/leads/{lead.pk}/assignment").json()["current"]["summary"]
        assert summary[0].startswith("Rule set v1")

    def test_someone_elses_lead_is_a_404(self, org, api_as):
        lead = lead_make(owner=org.bob)
        assert api_as(org.alice).get(f"/api/v1/leads/{lead.pk}/assignment").status_code == 404
        assert (
            api_as(org.dave)
            .post(f"/api/v1/leads/{lead.pk}/assignment", {"owner_id": org.erin.pk, "reason": "x"})
            .status_code
            == 404
        )

    def test_a_manager_reassigns_with_a_reason_and_the_history_keeps_both(self, org, api_as):
        in_force(org.admin, definition(fallback={"pool": {"users": ["alice"]}, "strategy": "round_robin"}))
        lead = lead_make()
        lead_route(lead=lead)
        api = api_as(org.carol)
        no_reason = api.post(f"/api/v1/leads/{lead.pk}/assignment", {"owner_id": org.bob.pk, "reason": "  "})
        assert no_reason.status_code == 422 and no_reason.json()["detail"][0]["loc"] == ["body", "reason"]
        other_region = api.post(
            f"/api/v1/leads/{lead.pk}/assignment", {"owner_id": org.erin.pk, "reason": "x"}
        )
        assert other_region.status_code == 422
        moved = api.post(
            f"/api/v1/leads/{lead.pk}/assignment", {"owner_id": org.bob.pk, "reason": "客户要求换人"}
        )
        assert moved.status_code == 201, moved.content
        history = api.get(f"/api/v1/leads/{lead.pk}/assignment").json()["history"]
        assert [(h["method"], h["assignee"]["id"]) for h in history] == [
            ("manual", org.bob.pk),
            ("fallback", org.alice.pk),
        ]
        assert history[0]["reason"] == "客户要求换人" and history[0]["actor"]["id"] == org.carol.pk
        assert (
            api_as(org.bob)
            .post(f"/api/v1/leads/{lead.pk}/assignment", {"owner_id": None, "reason": "x"})
            .status_code
            == 403
        )

    def test_a_lead_recorded_through_the_api_is_routed(self, org, api_as):
        in_force(org.admin, definition(fallback={"pool": {"users": ["bob"]}, "strategy": "round_robin"}))
        created = api_as(org.carol).post(
            "/api/v1/leads", {"customer": {"name": "新公司", "province": "上海"}}
        )
        assert created.status_code == 201, created.content
        assert created.json()["owner"]["id"] == org.bob.pk
        own = api_as(org.alice).post("/api/v1/leads", {"customer": {"name": "自己的公司"}}).json()
        trace = api_as(org.alice).get(f"/api/v1/leads/{own['id']}/assignment").json()["current"]
        assert trace["method"] == "manual" and trace["assignee"]["id"] == org.alice.pk
