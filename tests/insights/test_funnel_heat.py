"""The funnel heat map's numbers (SPEC C5.1), on the worked example of docs/insights.md: per stage
piled up, passed through, conversion, mean and median dwell, backward-move rate; by role scope."""

from __future__ import annotations

import datetime as dt

import pytest
from django.http import Http404

from salesloop.crm.selectors import FilterError
from salesloop.insights.funnel import funnel_cross, funnel_heat, funnel_query_parse

pytestmark = pytest.mark.django_db


def heat(user, **params):
    rows = funnel_heat(query=funnel_query_parse(user=user, params=params)).stages
    return {row.code: row for row in rows}


def test_the_organisation_funnel_counts_stays_exits_and_pile_up_per_stage(history, org):
    stages = heat(org.director)
    screening = stages["screening"]
    # five stays began in screening (alice's lead twice), three ended forward
    assert (screening.passed, screening.converted, screening.conversion) == (5, 3, 0.6)
    # exits after 2, 5 (lost), 1 and 10 days; none backward
    assert screening.exits == 4
    assert screening.dwell_mean_days == pytest.approx(4.5)
    assert screening.dwell_median_days == pytest.approx(3.0)  # true median 3.5: within the 1-day bucket
    assert screening.backward_rate == 0
    # erin's lead is the only one still open in screening, for 12 days now
    assert screening.piled_up == 1
    assert screening.pile_age_days == pytest.approx(12)
    needs = stages["needs_confirmed"]
    assert (needs.passed, needs.converted, needs.exits, needs.backward) == (2, 1, 2, 1)
    assert needs.backward_rate == 0.5
    assert needs.dwell_mean_days == pytest.approx(3.5)
    assert (stages["solution_demo"].piled_up, stages["solution_demo"].pile_age_days) == (1, pytest.approx(2))
    assert stages["contract_signed"].passed == 1
    assert stages["contract_signed"].conversion is None  # nothing after the last stage


def test_a_manager_sees_their_region_by_default_without_the_other_region(history, org):
    screening = heat(org.carol)["screening"]
    assert (screening.passed, screening.piled_up) == (4, 0)  # erin's 华南 lead is not counted


def test_a_rep_sees_the_funnel_of_their_own_leads(history, org):
    screening = heat(org.alice)["screening"]
    assert (screening.passed, screening.converted, screening.exits) == (3, 3, 3)
    assert heat(org.alice)["solution_demo"].piled_up == 1


def test_the_source_filter_keeps_one_channel(history, org):
    screening = heat(org.director, source="douyin")["screening"]
    assert (screening.passed, screening.converted, screening.exits) == (1, 0, 1)


def test_a_period_before_the_moves_is_empty_but_the_pile_up_is_now(history, org):
    screening = heat(org.director, start="2026-10-01", end="2026-10-31")["screening"]
    assert (screening.passed, screening.exits, screening.conversion) == (0, 0, None)
    assert screening.piled_up == 1


def test_the_period_counts_days_in_shanghai(history, org):
    # the entries at 09:00 Shanghai on 2 November are 01:00 UTC: they belong to 2 November
    assert heat(org.director, start="2026-11-02", end="2026-11-02")["screening"].passed == 4
    assert heat(org.director, start="2026-11-01", end="2026-11-01")["screening"].passed == 0


def test_the_cross_view_splits_stages_by_region(history, org):
    cross = funnel_cross(query=funnel_query_parse(user=org.director, params={}), by="region")
    by_region = {row.label: {cell.code: cell for cell in row.cells} for row in cross.rows}
    assert by_region["华东"]["screening"].passed == 4
    assert by_region["华南"]["screening"].piled_up == 1


def test_the_cross_view_by_rep_shows_each_reps_pile_up(history, org):
    cross = funnel_cross(query=funnel_query_parse(user=org.carol, params={}), by="rep")
    by_rep = {row.label: {cell.code: cell for cell in row.cells} for row in cross.rows}
    assert by_rep["Alice 王"]["solution_demo"].piled_up == 1
    assert "erin" not in by_rep  # 华南's rep is not in carol's region


@pytest.mark.parametrize(
    ("who", "params"),
    [
        ("carol", {"region": "south"}),
        ("carol", {"scope": "org"}),
        ("carol", {"rep": "erin"}),
        ("alice", {"rep": "bob"}),
        ("alice", {"scope": "region", "region": "east"}),
        ("director", {"region": 999_999}),
    ],
)
def test_a_scope_outside_the_users_own_is_not_found(history, org, who, params):
    ids = {"south": org.south.pk, "east": org.east.pk, "erin": org.erin.pk, "bob": org.bob.pk}
    params = {key: ids.get(value, value) for key, value in params.items()}
    with pytest.raises(Http404):
        funnel_query_parse(user=getattr(org, who), params=params)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2026-13-01"}, "start"),
        ({"start": "2026-11-10", "end": "2026-11-01"}, "start"),
        ({"source": "fax"}, "source"),
        ({"scope": "planet"}, "scope"),
        ({"region": "east"}, "region"),
        ({"start": "2020-01-01", "end": "2026-01-01"}, "start"),
        ({"end": "0001-01-01"}, "end"),
    ],
)
def test_a_bad_filter_names_its_field(org, params, field):
    with pytest.raises(FilterError) as info:
        funnel_query_parse(user=org.director, params=params)
    assert info.value.field == field


def test_the_default_period_is_the_last_90_days_to_today_in_shanghai(history, org):
    query = funnel_query_parse(user=org.director, params={})
    assert query.end == dt.date(2026, 11, 14)
    assert query.days == 90
