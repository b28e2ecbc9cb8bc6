"""Health on the pages (SPEC C3): the red badge in lists (no extra query), the filter, the lead
page's breakdown chart, the settings page."""

from __future__ import annotations

import re

import pytest

from salesloop.health.models import HealthModel
from salesloop.health.services import lead_health_changed, model_in_force
from tests.factories import lead_make
from tests.health.conftest import healthy, touch

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return response.content.decode()


@pytest.fixture
def scored(org, now):
    red = lead_make(owner=org.alice, title="冷线索")
    touch(red)
    lead_health_changed(lead_id=red.pk)
    good = lead_make(owner=org.alice, title="热线索")
    healthy(good)
    lead_health_changed(lead_id=good.pk)
    return red, good


def badges(body: str) -> int:
    return len(re.findall(r'class="health-badge health-badge--red"', body))


class TestLists:
    def test_the_lead_list_badges_red_leads_only(self, client, org, scored):
        client.force_login(org.alice)
        body = text(client.get("/leads/"))
        assert badges(body) == 1
        assert "红色预警 3" in body or "Red 3" in body

    def test_the_home_page_badges_red_leads(self, client, org, scored):
        client.force_login(org.alice)
        assert badges(text(client.get("/"))) == 1

    def test_the_filter(self, client, org, scored):
        client.force_login(org.carol)
        body = text(client.get("/leads/", {"health": "red"}))
        assert "冷线索" in body and "热线索" not in body
        body = text(client.get("/leads/", {"health": "ok"}))
        assert "热线索" in body and "冷线索" not in body
        assert client.get("/leads/", {"health": "pink"}).status_code == 400

    def test_the_badge_costs_no_query(self, client, org, scored, django_assert_num_queries):
        # as tests/crm/test_pages.py pins the list: session, user, pipeline, stages, owner
        # choices, the page (with the red flag), its stages, regions and provinces
        client.force_login(org.carol)
        for _ in range(5):
            red = lead_make(owner=org.bob)
            touch(red)
            lead_health_changed(lead_id=red.pk)
        with django_assert_num_queries(9):
            body = text(client.get("/leads/"))
        assert badges(body) == 6


class TestLeadPanel:
    def test_the_chart_shows_each_signal(self, client, org, scored):
        client.force_login(org.alice)
        red, good = scored
        page = text(client.get(f"/leads/{good.pk}/"))
        assert f"/health/leads/{good.pk}/" in page  # loaded lazily
        body = text(client.get(f"/health/leads/{good.pk}/"))
        assert body.count('class="health-bars__item"') == 6
        assert "沟通频次" in body or "Contact frequency" in body
        assert "width: 100%" in body  # contact frequency at full marks
        assert "60<small>" in body and badges(body) == 0
        assert badges(text(client.get(f"/health/leads/{red.pk}/"))) == 1

    def test_out_of_scope_is_404(self, client, org, scored):
        client.force_login(org.bob)
        assert client.get(f"/health/leads/{scored[0].pk}/").status_code == 404

    def test_not_scored_yet(self, client, org, now):
        lead = lead_make(owner=org.alice)
        client.force_login(org.alice)
        body = text(client.get(f"/health/leads/{lead.pk}/"))
        assert "health-bars__item" not in body


def form(**changes) -> dict[str, str]:
    current = model_in_force()
    data = {"half_life_days": "14", "red_threshold": "45", "note": "提高红线"}
    for key in ("weights", "windows", "targets"):
        for signal, value in getattr(current, key).items():
            data[f"{key}.{signal}"] = str(value)
    data.update(changes)
    return data


class TestSettings:
    @pytest.mark.parametrize("who", ["alice", "carol", "pm"])
    def test_only_directors_and_admins(self, client, org, who):
        client.force_login(getattr(org, who))
        assert client.get("/health/settings/").status_code == 403
        assert client.post("/health/settings/", form()).status_code == 403

    def test_publish_a_new_version(self, client, org, now):
        client.force_login(org.director)
        assert client.get("/health/settings/").status_code == 200
        response = client.post("/health/settings/", form())
        assert response.status_code == 302
        assert model_in_force().version == 2 and model_in_force().red_threshold == 45

    def test_errors_name_the_field(self, client, org, now):
        client.force_login(org.admin)
        response = client.post(
            "/health/settings/", form(**{"weights.budget_progress": "abc", "red_threshold": "0"})
        )
        assert response.status_code == 400
        body = text(response)
        assert "field__error" in body
        assert HealthModel.objects.count() == 1
