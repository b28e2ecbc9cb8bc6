"""C8.4 over HTTP: `/api/v1/routing/rulesets/{id}/simulate`, `…/ab-test`, `/api/v1/routing/reports`."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings

from salesloop.core import clock
from salesloop.routing import services
from tests.factories import lead_make
from tests.routing.conftest import definition, in_force, rule

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)
BASE = "/api/v1/routing"


def fields_of(response) -> set[str]:
    return {str(part) for error in response.json()["detail"] for part in error["loc"][1:]}


@pytest.fixture
def setup(org):
    """A region round-robin in force, a draft that sends everything to alice, and past leads."""
    clock.set_now(NOW)
    current = in_force(org.admin, definition(rule("by-region", 10, lead_region=True)))
    draft = services.ruleset_create(
        actor=org.director,
        definition=definition(
            rule("alice", 10, users=["alice"]),
            fallback={"pool": {"users": ["alice"]}, "strategy": "round_robin"},
        ),
    )
    for province, days in [("31", 3), ("44", 5), ("44", 40)]:
        lead_make(province=province, created_at=NOW - dt.timedelta(days=days))
    return current, draft


class TestSimulate:
    def test_it_answers_202_with_the_report(self, org, api_as, setup):
        current, draft = setup
        response = api_as(org.director).post(f"{BASE}/rulesets/{draft.pk}/simulate", {"days": 90})
        assert response.status_code == 202
        body = response.json()
        assert body["status"] == "done" and body["kind"] == "replay" and body["progress"] == 1.0
        assert body["leads_total"] == body["leads_done"] == 3
        assert body["ruleset_id"] == draft.pk and body["baseline"]["id"] == current.pk
        assert body["metrics"]["candidate"]["region_match_rate"] == round(1 / 3, 4)
        assert body["worse"] is True and body["findings"][0]["code"] == "region_match_down"
        assert len(body["summary"]) == len(body["findings"])
        # the report is there to read again, in the reader's language
        again = api_as(org.director).get(f"{BASE}/reports/{body['id']}")
        assert again.status_code == 200 and again.json()["metrics"] == body["metrics"]
        assert again.json()["summary"][0] == body["findings"][0]["text"]  # Chinese by default
        reader = api_as(org.director)
        reader.client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
        english = reader.get(f"{BASE}/reports/{body['id']}").json()
        assert english["summary"][0].startswith("Region matching falls")
        assert english["findings"][0]["text"] == body["findings"][0]["text"]

    def test_a_window_by_its_ends(self, org, api_as, setup):
        _, draft = setup
        start = (NOW - dt.timedelta(days=4)).isoformat()
        end = (NOW - dt.timedelta(days=1)).isoformat()
        response = api_as(org.admin).post(
            f"{BASE}/rulesets/{draft.pk}/simulate", {"window_start": start, "window_end": end}
        )
        assert response.status_code == 202 and response.json()["leads_total"] == 1

    @pytest.mark.parametrize(
        "body, field",
        [
            ({"days": 0}, "days"),
            ({"days": "many"}, "days"),
            ({"days": 3, "window_start": "2026-11-01T00:00:00+08:00"}, "days"),
            (
                {"window_start": "2026-11-20T00:00:00+08:00", "window_end": "2026-11-10T00:00:00+08:00"},
                "window_start",
            ),
            ({"window_start": "not a date"}, "window_start"),
        ],
    )
    def test_bad_windows_are_422_naming_the_field(self, org, api_as, setup, body, field):
        _, draft = setup
        response = api_as(org.director).post(f"{BASE}/rulesets/{draft.pk}/simulate", body)
        assert response.status_code == 422
        assert field in fields_of(response)

    def test_who_may_simulate(self, org, api_as, setup):
        current, draft = setup
        # a manager reads published versions but runs no sandbox; a draft is not theirs to see
        assert api_as(org.carol).post(f"{BASE}/rulesets/{current.pk}/simulate").status_code == 403
        assert api_as(org.carol).post(f"{BASE}/rulesets/{draft.pk}/simulate").status_code == 404
        assert api_as(org.alice).post(f"{BASE}/rulesets/{draft.pk}/simulate").status_code == 404
        assert api_as(org.director).post(f"{BASE}/rulesets/999999/simulate").status_code == 404


class TestReports:
    def test_reports_are_for_managers_directors_and_admins(self, org, api_as, setup):
        _, draft = setup
        report_id = api_as(org.director).post(f"{BASE}/rulesets/{draft.pk}/simulate").json()["id"]
        for person in (org.carol, org.dave, org.director, org.admin):
            assert api_as(person).get(f"{BASE}/reports/{report_id}").status_code == 200
        for person in (org.alice, org.erin, org.pm):
            assert api_as(person).get(f"{BASE}/reports/{report_id}").status_code == 404
            assert api_as(person).get(f"{BASE}/reports").status_code == 404
        assert api_as(org.director).get(f"{BASE}/reports/999999").status_code == 404

    def test_the_list_filters_by_rule_set_newest_first(self, org, api_as, setup):
        current, draft = setup
        client = api_as(org.director)
        first = client.post(f"{BASE}/rulesets/{draft.pk}/simulate").json()["id"]
        second = client.post(f"{BASE}/rulesets/{draft.pk}/simulate", {"days": 7}).json()["id"]
        other = client.post(f"{BASE}/rulesets/{current.pk}/simulate").json()["id"]
        listed = api_as(org.carol).get(f"{BASE}/reports", ruleset_id=draft.pk)
        assert listed.status_code == 200
        assert [r["id"] for r in listed.json()] == [second, first]
        assert "metrics" not in listed.json()[0]
        assert [r["id"] for r in client.get(f"{BASE}/reports").json()] == [other, second, first]
        assert client.get(f"{BASE}/reports", ruleset_id=0).status_code == 422


class TestAbTest:
    def test_start_read_and_stop(self, org, api_as, setup):
        _, draft = setup
        client = api_as(org.director)
        response = client.post(f"{BASE}/rulesets/{draft.pk}/ab-test", {"share": 0.5, "days": 3})
        assert response.status_code == 201
        body = response.json()
        assert (body["kind"], body["status"], body["share"]) == ("ab", "running", 0.5)
        # leads arrive during the test; reading the report measures them
        routed = [services.lead_route(lead=lead_make(province="44")) for _ in range(12)]
        in_candidate = sum(1 for a in routed if a.arm == "candidate")
        read = client.get(f"{BASE}/reports/{body['id']}").json()
        assert read["metrics"]["candidate"]["leads"] == in_candidate
        assert read["metrics"]["current"]["leads"] == 12 - in_candidate
        stopped = client.post(f"{BASE}/reports/{body['id']}/stop")
        assert stopped.status_code == 200
        assert stopped.json()["status"] == "done" and stopped.json()["stopped_at"] is not None
        assert client.post(f"{BASE}/reports/{body['id']}/stop").status_code == 422

    def test_a_running_report_refreshes_when_its_numbers_are_old(self, org, api_as, setup):
        _, draft = setup
        client = api_as(org.director)
        report_id = client.post(f"{BASE}/rulesets/{draft.pk}/ab-test", {"share": 0.5}).json()["id"]
        assert client.get(f"{BASE}/reports/{report_id}").json()["leads_done"] == 0
        for _ in range(6):
            services.lead_route(lead=lead_make(province="31"))
        # read again at once: the numbers of a moment ago; a minute later: fresh ones
        assert client.get(f"{BASE}/reports/{report_id}").json()["leads_done"] == 0
        clock.advance(dt.timedelta(minutes=1))
        assert client.get(f"{BASE}/reports/{report_id}").json()["leads_done"] == 6

    @pytest.mark.parametrize(
        "body, field",
        [
            ({"share": 1.5}, "share"),
            ({"share": 0}, "share"),
            ({"days": 0}, "days"),
            ({"days": 500}, "days"),
            ({"ends_at": "2020-01-01T00:00:00+08:00"}, "ends_at"),
            ({"days": 2, "ends_at": "2026-12-03T00:00:00+08:00"}, "days"),
        ],
    )
    def test_bad_parameters_are_422_naming_the_field(self, org, api_as, setup, body, field):
        _, draft = setup
        response = api_as(org.director).post(f"{BASE}/rulesets/{draft.pk}/ab-test", body)
        assert response.status_code == 422
        assert field in fields_of(response)

    def test_refusals(self, org, api_as, setup):
        current, draft = setup
        client = api_as(org.director)
        # the version in force is not a candidate
        assert "ruleset" in fields_of(client.post(f"{BASE}/rulesets/{current.pk}/ab-test"))
        assert client.post(f"{BASE}/rulesets/{draft.pk}/ab-test").status_code == 201
        # one test at a time
        second = services.ruleset_create(actor=org.director, definition=draft.definition)
        busy = client.post(f"{BASE}/rulesets/{second.pk}/ab-test")
        assert busy.status_code == 422 and "ab_test" in fields_of(busy)
        # a replay is not stopped
        replay_id = client.post(f"{BASE}/rulesets/{draft.pk}/simulate").json()["id"]
        stop = client.post(f"{BASE}/reports/{replay_id}/stop")
        assert stop.status_code == 422 and "kind" in fields_of(stop)
        # managers read reports but neither start nor stop tests
        test_id = client.get(f"{BASE}/reports", ruleset_id=draft.pk).json()[-1]["id"]
        assert api_as(org.carol).post(f"{BASE}/reports/{test_id}/stop").status_code == 403
        assert api_as(org.alice).post(f"{BASE}/reports/{test_id}/stop").status_code == 404
