"""GET /api/v1/insights/indicators (SPEC C9): the series with inputs, scoped by role; the leads a
value counted; the thresholds versions. Bad input is a 422 naming the field; out of scope a 404."""

from __future__ import annotations

import pytest

from salesloop.core import clock
from salesloop.insights.models.indicators import IndicatorThresholds
from tests.insights.indicator_helpers import arrive, local

URL = "/api/v1/insights/indicators"


def test_the_series_shows_each_value_with_its_inputs(org, conversion_data, api_as):
    response = api_as(org.alice).get(
        URL, scope=f"rep:{org.alice.pk}", granularity="week", **{"from": "2026-11-09", "to": "2026-11-22"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["scope"] == {
        "key": f"rep:{org.alice.pk}",
        "kind": "rep",
        "id": org.alice.pk,
        "label": "Alice 王",
    }
    conversion = body["indicators"]["conversion"]
    assert [p["period_start"] for p in conversion] == ["2026-11-09", "2026-11-16"]
    week2 = conversion[1]
    assert (week2["numerator"], week2["denominator"], week2["value"]) == (1, 5, 0.2)
    assert week2["status"] == "warning" and week2["entered_warning"] is True
    assert week2["thresholds_version"] == 1
    assert week2["suggested_response"] == "channel_quality_review"
    assert set(body["indicators"]) == {"conversion", "stall", "response"}


def test_a_rep_sees_only_their_own_values(org, conversion_data, api_as):
    client = api_as(org.alice)
    assert client.get(URL).json()["scope"]["key"] == f"rep:{org.alice.pk}"  # own by default
    assert client.get(URL, scope=f"rep:{org.bob.pk}").status_code == 404
    assert client.get(URL, scope="region:east").status_code == 404
    assert client.get(URL, scope="org").status_code == 404


def test_a_manager_sees_their_region_and_its_reps_but_not_another_region(org, conversion_data, api_as):
    carol = api_as(org.carol)
    assert carol.get(URL).json()["scope"]["key"] == f"region:{org.east.pk}"
    assert carol.get(URL, scope="region:east").status_code == 200
    assert carol.get(URL, scope=f"rep:{org.alice.pk}").status_code == 200
    assert carol.get(URL, scope="region:south").status_code == 404
    assert carol.get(URL, scope=f"rep:{org.erin.pk}").status_code == 404
    assert carol.get(URL, scope="org").status_code == 404
    assert api_as(org.director).get(URL, scope="org").status_code == 200


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"scope": "planet:mars"}, "scope"),
        ({"granularity": "month"}, "granularity"),
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026-11-20", "to": "2026-11-01"}, "from"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(org, api_as, params, field):
    response = api_as(org.director).get(URL, **params)
    assert response.status_code == 422
    assert field in response.json()["detail"][0]["loc"]


def test_the_leads_behind_a_value_are_listed_page_by_page(org, conversion_data, api_as):
    client = api_as(org.carol)
    params = {
        "indicator": "conversion",
        "granularity": "week",
        "period": "2026-11-16",
        "scope": f"rep:{org.alice.pk}",
    }
    first = client.get(f"{URL}/leads", limit=3, **params).json()
    second = client.get(f"{URL}/leads", limit=3, cursor=first["next_cursor"], **params).json()
    listed = [row["lead_id"] for row in first["items"] + second["items"]]
    week2 = [conversion_data[name].pk for name in ("L5", "L6", "L7", "L8", "L9")]
    assert listed == sorted(week2, reverse=True)
    assert second["next_cursor"] is None
    numerator = client.get(f"{URL}/leads", part="numerator", **params).json()["items"]
    assert [row["lead_id"] for row in numerator] == [conversion_data["L5"].pk]


def test_the_leads_behind_a_value_out_of_scope_are_a_404(org, conversion_data, api_as):
    params = {"indicator": "conversion", "period": "2026-11-16", "scope": f"rep:{org.alice.pk}"}
    assert api_as(org.bob).get(f"{URL}/leads", **params).status_code == 404
    assert api_as(org.dave).get(f"{URL}/leads", **params).status_code == 404


def test_the_series_takes_a_fixed_number_of_queries(org, conversion_data, api_as, django_assert_num_queries):
    client = api_as(org.director)
    params = {"scope": "region:east", "granularity": "week"}
    # authentication, the scope, the thresholds, and one ledger query per indicator for all eight
    # weeks and the weeks their statuses compare with
    with django_assert_num_queries(8):
        assert client.get(URL, **params).status_code == 200
    # more leads, the same queries
    for day in ("2026-11-20", "2026-11-21", "2026-11-22"):
        arrive(org.bob, local(day, 9))
    clock.set_now(local("2026-11-25", 10))
    client = api_as(org.director)
    with django_assert_num_queries(8):
        assert client.get(URL, **params).status_code == 200


def test_an_admin_publishes_new_thresholds_and_a_rep_may_not(org, api_as):
    clock.set_now(local("2026-11-25", 10))
    created = api_as(org.admin).post(f"{URL}/thresholds", {"conversion_healthy": 0.4, "note": "Q4"})
    assert created.status_code == 201
    assert created.json()["version"] == 1 and created.json()["values"]["conversion_healthy"] == 0.4
    assert created.json()["in_force"] is True
    assert api_as(org.alice).post(f"{URL}/thresholds", {"conversion_healthy": 0.4}).status_code == 403
    assert IndicatorThresholds.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"conversion_healthy": 1.5}, "conversion_healthy"),
        ({"conversion_warning": 0.5}, "conversion_warning"),  # above the healthy line 0.38
        ({"stall_warning_days": 3}, "stall_warning_days"),  # below the healthy line 4.2
        ({"effective_from": "2020-01-01T00:00:00+08:00"}, "effective_from"),
        ({"response_drop_min_touches": "many"}, "response_drop_min_touches"),
    ],
)
def test_bad_thresholds_are_a_422_naming_the_field(org, api_as, body, field):
    clock.set_now(local("2026-11-25", 10))
    response = api_as(org.admin).post(f"{URL}/thresholds", body)
    assert response.status_code == 422
    assert field in response.json()["detail"][0]["loc"]
    assert not IndicatorThresholds.objects.exists()
