"""The funnel page `/insights/funnel` (SPEC C5): filters, the coloured heat map with drillable
cells, the cross view, the cycle-time chart; role scopes; bad input re-renders the form."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import PASSWORD, lead_make
from tests.insights.conftest import move

pytestmark = pytest.mark.django_db


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_a_manager_sees_their_regions_heat_map_with_drillable_cells(history, org, client):
    response = login(client, org.carol).get("/insights/funnel")
    assert response.status_code == 200
    html = response.content.decode()
    assert "初筛" in html and "funnel-cell" in html
    assert 'hx-get="/insights/funnel/leads?' in html
    assert "vendor/plotly.min.js" in html
    assert 'id="cycle-chart-data"' in html
    # the region chooser offers only their own region
    assert "华南" not in html


def test_the_cross_view_by_rep_shows_the_chosen_measure_with_drillable_cells(history, org, client):
    response = login(client, org.carol).get("/insights/funnel", {"cross": "rep", "measure": "conversion"})
    html = response.content.decode()
    assert response.status_code == 200
    cross = html[html.index('id="cross-title"') :]
    assert "进入下一阶段比例" in cross[: cross.index("</h2>")]  # the measure named in the heading
    # alice's 需求确认 cell: 50% conversion, drilling to her leads that passed through it
    assert re.search(r"Alice 王 · 需求确认 · [^:]+: 50%", cross)
    assert f"cell_rep={org.alice.pk}" in cross and "kind=passed" in cross
    assert re.search(r'<option value="conversion"\s+selected>', html)


def test_an_unknown_cross_measure_re_renders_the_form_naming_it(history, org, client):
    response = login(client, org.carol).get("/insights/funnel", {"cross": "rep", "measure": "vibes"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'role="alert"' in html and "measure" in html


def test_a_reps_page_makes_the_same_number_of_queries_whatever_their_book(history, org, client):
    login(client, org.alice)
    client.get("/insights/funnel", {"cross": "rep"})
    with CaptureQueriesContext(connection) as queries:
        client.get("/insights/funnel", {"cross": "rep"})
    for _ in range(5):
        move(lead_make(owner=org.alice, province="31"), "needs_confirmed", org.alice)
    with CaptureQueriesContext(connection) as again:
        client.get("/insights/funnel", {"cross": "rep"})
    assert len(again) == len(queries)


def test_a_manager_asking_for_another_region_gets_404(history, org, client):
    assert login(client, org.carol).get("/insights/funnel", {"region": org.south.pk}).status_code == 404


def test_a_bad_date_re_renders_the_form_with_the_error_and_what_was_typed(history, org, client):
    response = login(client, org.director).get(
        "/insights/funnel", {"start": "2026-02-30", "source": "douyin"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'role="alert"' in html and "start" in html
    assert 'value="2026-02-30"' in html
    assert re.search(r'<option value="douyin"\s+selected>', html)


def test_htmx_gets_only_the_body(history, org, client):
    response = login(client, org.director).get(
        "/insights/funnel", {"cross": "region"}, headers={"HX-Request": "true", "HX-Target": "funnel-body"}
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="funnel-body"')
    assert "华南" in html  # the cross view by region, for a director


def test_the_cell_fragment_lists_the_leads_behind_it(history, org, client):
    response = login(client, org.director).get(
        "/insights/funnel/leads", {"stage": "screening", "kind": "piled"}
    )
    html = response.content.decode()
    assert f"/leads/{history.c.pk}/" in html
    assert f"/leads/{history.a.pk}/" not in html


def test_a_rep_sees_only_their_own_funnel(history, org, client):
    login(client, org.alice)
    assert client.get("/insights/funnel").status_code == 200
    assert client.get("/insights/funnel", {"rep": org.bob.pk}).status_code == 404
    drill = client.get("/insights/funnel/leads", {"stage": "screening", "kind": "passed"}).content.decode()
    assert f"/leads/{history.a.pk}/" in drill and f"/leads/{history.b.pk}/" not in drill


def test_the_page_makes_a_fixed_number_of_queries(history, org, client, django_assert_num_queries):
    login(client, org.director)
    client.get("/insights/funnel", {"cross": "region"})
    with CaptureQueriesContext(connection) as queries:
        client.get("/insights/funnel", {"cross": "region"})
    for _ in range(5):
        move(lead_make(owner=org.erin, province="44"), "needs_confirmed", org.erin)
    with django_assert_num_queries(len(queries)):
        client.get("/insights/funnel", {"cross": "region"})
