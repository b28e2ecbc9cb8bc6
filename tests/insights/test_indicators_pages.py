"""The indicator pages (SPEC C9, C5 charts): three cards in Chinese with value, status, inputs and
the link to the leads counted; the leads page; the thresholds form keeps what was typed on error."""

from __future__ import annotations

from salesloop.core import clock
from salesloop.insights.models.indicators import IndicatorThresholds
from tests.factories import PASSWORD
from tests.insights.indicator_helpers import local


def page(client, user, path="/insights/indicators/", **params):
    client.login(username=user.username, password=PASSWORD)
    return client.get(path, params)


def test_a_rep_sees_three_cards_with_value_status_and_inputs(client, org, conversion_data):
    clock.set_now(local("2026-11-22", 20))  # during week 2
    response = page(client, org.alice, granularity="week")
    html = response.content.decode()
    assert response.status_code == 200
    for label in ("线索-商机转化率", "阶段停滞指数", "客户行为响应率"):
        assert label in html
    assert "1 / 5 条线索进入需求确认" in html
    assert 'class="card ind-card ind-card--warning" data-indicator="conversion"' in html
    assert "获客渠道质量复盘会" in html  # the suggested response of a warning
    assert (
        "/insights/indicators/leads/?indicator=conversion&amp;granularity=week&amp;period=2026-11-16" in html
    )
    assert "vendor/plotly.min.js" in html


def test_a_scope_out_of_reach_is_a_404_and_a_malformed_one_is_explained(client, org, conversion_data):
    assert page(client, org.alice, scope=f"rep:{org.bob.pk}").status_code == 404
    assert page(client, org.dave, scope="region:east").status_code == 404
    response = page(client, org.carol, scope="nonsense")
    assert response.status_code == 200
    assert "范围：" in response.content.decode()


def test_the_leads_page_lists_exactly_the_leads_counted(client, org, conversion_data):
    response = page(
        client,
        org.carol,
        "/insights/indicators/leads/",
        indicator="conversion",
        granularity="week",
        period="2026-11-16",
        scope="region:east",
        part="numerator",
    )
    html = response.content.decode()
    assert response.status_code == 200
    for name in ("L5", "L10"):
        assert f"/leads/{conversion_data[name].pk}/" in html
    for name in ("L6", "L9", "L1", "L11"):
        assert f"/leads/{conversion_data[name].pk}/" not in html


def test_the_leads_page_explains_a_bad_period(client, org, conversion_data):
    response = page(
        client, org.carol, "/insights/indicators/leads/", indicator="conversion", period="yesterday"
    )
    assert response.status_code == 422
    assert "period" in response.content.decode()


def test_the_thresholds_form_keeps_what_was_typed_and_names_the_wrong_field(client, org):
    clock.set_now(local("2026-11-25", 10))
    client.login(username=org.admin.username, password=PASSWORD)
    form = {"conversion_healthy": "0.38", "conversion_warning": "0.5", "stall_healthy_days": "abc"}
    response = client.post("/insights/indicators/thresholds/", form)
    html = response.content.decode()
    assert response.status_code == 422
    assert 'value="0.5"' in html and 'value="abc"' in html
    assert "预警线不能高于健康线" not in html  # the lines are compared once every number is valid
    assert "请输入" in html
    assert not IndicatorThresholds.objects.exists()
    # corrected, it is saved as version 1
    form.update({"conversion_warning": "0.3", "stall_healthy_days": "4.2"})
    for name in (
        "conversion_window_days",
        "stall_warning_days",
        "stall_demo_share",
        "response_healthy",
        "response_warning",
        "response_drop_points",
        "response_drop_relative",
        "response_drop_min_touches",
    ):
        form.setdefault(
            name,
            {
                "conversion_window_days": "28",
                "stall_warning_days": "5.5",
                "stall_demo_share": "0.45",
                "response_healthy": "0.61",
                "response_warning": "0.48",
                "response_drop_points": "0.15",
                "response_drop_relative": "0.25",
                "response_drop_min_touches": "10",
            }[name],
        )
    assert client.post("/insights/indicators/thresholds/", form).status_code == 302
    assert IndicatorThresholds.objects.get().version == 1


def test_only_admins_and_directors_open_the_thresholds_page(client, org):
    assert page(client, org.carol, "/insights/indicators/thresholds/").status_code == 403
    assert page(client, org.director, "/insights/indicators/thresholds/").status_code == 200
