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


def test_the_cross_view_by_rep_shows_every_measure_per_rep(history, org):
    cross = funnel_cross(query=funnel_query_parse(user=org.carol, params={}), by="rep")
    by_rep = {row.label: {cell.code: cell for cell in row.cells} for row in cross.rows}
    assert set(by_rep) == {"Alice 王", "bob"}  # 华南's erin is not in carol's region
    alice, bob = by_rep["Alice 王"], by_rep["bob"]
    assert alice["solution_demo"].piled_up == 1
    # alice's flows: a entered 需求确认 twice (forward once, back once), d won after 10 days
    assert (alice["needs_confirmed"].passed, alice["needs_confirmed"].converted) == (2, 1)
    assert alice["needs_confirmed"].backward_rate == 0.5
    assert alice["needs_confirmed"].dwell_mean_days == pytest.approx(3.5)
    assert (alice["screening"].passed, alice["screening"].conversion) == (3, 1.0)
    # bob's only lead was lost in screening after 5 days: an exit, not a conversion
    assert (bob["screening"].passed, bob["screening"].exits, bob["screening"].conversion) == (1, 1, 0)
    assert bob["screening"].dwell_mean_days == pytest.approx(5.0)


def test_a_team_funnel_is_its_members_funnels_summed_and_follows_membership(history, org):
    from salesloop.accounts.models import Team

    team = Team.objects.create(name="华东一组", region=org.east)
    org.alice.team = team
    org.alice.save(update_fields=["team"])
    only_alice = heat(org.director, team=team.pk)
    # a team of one has that rep's funnel, measure for measure
    assert {c: (r.passed, r.converted, r.exits, r.piled_up, r.backward) for c, r in only_alice.items()} == {
        c: (r.passed, r.converted, r.exits, r.piled_up, r.backward)
        for c, r in heat(org.director, rep=org.alice.pk).items()
    }
    assert only_alice["screening"].passed == 3
    # when bob joins the team, his lost lead counts in it
    org.bob.team = team
    org.bob.save(update_fields=["team"])
    both = heat(org.director, team=team.pk)
    assert both["screening"].passed == 4
    assert both["screening"].exits == only_alice["screening"].exits + 1


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
