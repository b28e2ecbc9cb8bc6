"""`GET /api/v1/insights/funnel`, `/insights/funnel/leads` and `/insights/cycle` (SPEC C5): the
page's numbers, scoped by role, errors naming the field, a fixed number of queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import lead_make
from tests.insights.conftest import move

pytestmark = pytest.mark.django_db


def test_the_api_gives_the_heat_map_per_stage(history, org, api_as):
    body = api_as(org.director).get("/api/v1/insights/funnel").json()
    screening = body["stages"][0]
    assert screening["stage"] == "screening"
    assert (screening["passed"], screening["conversion"], screening["piled_up"]) == (5, 0.6, 1)
    assert screening["dwell_mean_days"] == 4.5
    assert body["query"]["scope"] == "org"
    assert body["cross"] is None


def test_the_api_cross_view_by_region(history, org, api_as):
    body = api_as(org.director).get("/api/v1/insights/funnel", cross="region").json()
    rows = {row["label"]: row for row in body["cross"]["rows"]}
    assert rows["华南"]["cells"][0]["piled_up"] == 1
    assert rows["华东"]["cells"][0]["passed"] == 4


def test_the_api_cross_view_by_rep_has_every_measure(history, org, api_as):
    body = api_as(org.carol).get("/api/v1/insights/funnel", cross="rep").json()
    rows = {row["label"]: {cell["stage"]: cell for cell in row["cells"]} for row in body["cross"]["rows"]}
    assert set(rows) == {"Alice 王", "bob"}
    needs = rows["Alice 王"]["needs_confirmed"]
    assert (needs["passed"], needs["conversion"], needs["backward_rate"]) == (2, 0.5, 0.5)
    assert rows["bob"]["screening"]["dwell_mean_days"] == 5.0


def test_a_manager_asking_for_another_region_gets_404(history, org, api_as):
    response = api_as(org.carol).get("/api/v1/insights/funnel", region=org.south.pk)
    assert response.status_code == 404
    response = api_as(org.carol).get("/api/v1/insights/funnel/leads", region=org.south.pk, stage="screening")
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [({"start": "yesterday"}, "start"), ({"source": "fax"}, "source"), ({"scope": "x"}, "scope"),
     ({"start": "2026-11-10", "end": "2026-11-01"}, "start")],
)  # fmt: skip
def test_a_bad_filter_is_422_naming_the_field(history, org, api_as, params, field):
    response = api_as(org.director).get("/api/v1/insights/funnel", **params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == field


def test_the_drill_down_lists_the_leads_behind_a_cell_with_follow_up_and_health(history, org, api_as):
    from salesloop.engagement.services import touch_record

    touch_record(actor=org.erin, lead=history.c, kind="call", direction="outbound")
    body = api_as(org.director).get("/api/v1/insights/funnel/leads", stage="screening", kind="piled").json()
    assert [item["id"] for item in body["items"]] == [history.c.pk]
    assert body["items"][0]["last_touch_at"] is not None
    assert "health_score" in body["items"][0]
    passed = (
        api_as(org.director).get("/api/v1/insights/funnel/leads", stage="screening", kind="passed").json()
    )
    assert {item["id"] for item in passed["items"]} == {
        history.a.pk,
        history.b.pk,
        history.c.pk,
        history.d.pk,
    }


def test_a_manager_drilling_sees_only_their_regions_leads(history, org, api_as):
    body = api_as(org.carol).get("/api/v1/insights/funnel/leads", stage="screening", kind="passed").json()
    assert {item["id"] for item in body["items"]} == {history.a.pk, history.b.pk, history.d.pk}


def test_the_drill_down_pages_by_keyset(history, org, api_as):
    client = api_as(org.director)
    first = client.get("/api/v1/insights/funnel/leads", stage="screening", kind="passed", limit=3).json()
    second = client.get(
        "/api/v1/insights/funnel/leads",
        stage="screening",
        kind="passed",
        limit=3,
        cursor=first["next_cursor"],
    ).json()
    assert len(first["items"]) == 3 and len(second["items"]) == 1
    assert second["next_cursor"] is None


def test_the_cycle_time_trend_and_comparison(history, org, api_as):
    body = api_as(org.director).get("/api/v1/insights/cycle", start="2026-11-09", end="2026-11-14").json()
    arrival = body["series"][0]
    assert arrival["key"] == "arrival_to_won"
    assert arrival["days"] == [10.0]  # lead d: arrived 2 November, won 12 November
    assert body["current"]["count"] == 1


def _query_count(client, path, **params) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path, **params).status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    ("path", "params"),
    [("/api/v1/insights/funnel", {"cross": "region"}), ("/api/v1/insights/cycle", {}),
     ("/api/v1/insights/funnel/leads", {"stage": "screening", "kind": "passed"})],
)  # fmt: skip
def test_the_api_makes_a_fixed_number_of_queries_whatever_the_number_of_leads(
    history, org, api_as, path, params, django_assert_num_queries
):
    client = api_as(org.director)
    client.get(path, **params)  # the token's first use is recorded once
    before = _query_count(client, path, **params)
    # when many more leads with moves exist
    for _ in range(6):
        lead = lead_make(owner=org.bob, province="32")
        move(lead, "needs_confirmed", org.bob)
    # then the same number of queries answers
    with django_assert_num_queries(before):
        client.get(path, **params)


def test_the_organisation_heat_map_reads_four_queries(history, org, django_assert_num_queries):
    from salesloop.insights.funnel import funnel_heat, funnel_query_parse

    query = funnel_query_parse(user=org.director, params={})
    with django_assert_num_queries(3):  # the day sums (with the dwell histogram), the pile-up, the stages
        funnel_heat(query=query)
