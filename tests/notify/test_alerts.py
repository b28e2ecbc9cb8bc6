"""Alerts (SPEC C9): one alert per entry into warning, in-app notices, one outbox row per robot
covering the alert's scope, and a Chinese message with the why, the what-to-do and the link."""

from __future__ import annotations

import pytest

from salesloop.accounts.models import Team
from salesloop.notify.alerts import alert_state_set, message_of
from salesloop.notify.models import Alert, BotDelivery, Notification
from tests.notify.conftest import dingtalk_channel, raise_alert, wecom_channel

pytestmark = pytest.mark.django_db


def test_one_alert_per_entry_into_warning(org):
    # given: the conversion indicator of 华东 evaluated four times: warning, warning, ok, warning
    first = raise_alert(org)
    again = raise_alert(org)
    raise_alert(org, active=False)
    second = raise_alert(org)

    # then: two alerts, the first cleared, the second open; the repeat raised nothing
    assert first is not None and second is not None and again is None
    alerts = list(Alert.objects.order_by("id"))
    assert [a.pk for a in alerts] == [first.pk, second.pk]
    assert alerts[0].cleared_at is not None and alerts[1].cleared_at is None
    # and carol heard twice, once per entry
    assert Notification.objects.filter(user=org.carol, kind="indicator.conversion").count() == 2


def test_the_alert_keeps_explanation_link_and_suggested_response(org):
    alert = raise_alert(org)
    alert.refresh_from_db()
    assert alert.explanation["summary"].startswith("转化率 8%")
    assert alert.link == "/insights/funnel/?region=east"
    assert alert.suggested_response.startswith("复盘渠道质量")
    assert list(alert.recipients.all()) == [org.carol]
    notice = Notification.objects.get(user=org.carol)
    assert (notice.title, notice.link) == ("华东 转化率预警", "/insights/funnel/?region=east")


def test_clearing_an_alert_that_is_not_open_does_nothing(org):
    assert raise_alert(org, active=False) is None
    assert Alert.objects.count() == 0 and Notification.objects.count() == 0


def test_keys_are_independent(org):
    raise_alert(org, key="indicator:conversion:week:region:east")
    assert raise_alert(org, key="indicator:stall:week:region:east", kind="indicator.stall") is not None
    assert Alert.objects.filter(cleared_at__isnull=True).count() == 2


def test_each_robot_covering_the_scope_gets_one_message(org, robot):
    # given: robots of 华东, of 华南, of the whole organisation, of a 华东 team, a disabled one of
    # 华东, and one of 华东 taking only stall alerts
    team = Team.objects.create(name="华东一组", region=org.east)
    east = wecom_channel(robot, actor=org.admin, region=org.east, name="华东群")
    south = dingtalk_channel(robot, actor=org.admin, region=org.south, name="华南群")
    everyone = wecom_channel(robot, actor=org.admin, name="全国群")
    team_bot = wecom_channel(robot, actor=org.admin, team=team, name="一组群")
    wecom_channel(robot, actor=org.admin, region=org.east, name="停用群", enabled=False)
    wecom_channel(robot, actor=org.admin, region=org.east, name="停滞群", alert_kinds=["indicator.stall"])

    # when: a conversion alert of 华东 is raised, then one of the team
    region_alert = raise_alert(org)
    team_alert = raise_alert(org, key="indicator:conversion:week:team:1", region=None, team=team)

    # then: the region's alert goes to 华东 and the organisation's robot; the team's also to its own
    def targets(alert):
        return set(BotDelivery.objects.filter(alert=alert).values_list("channel_id", flat=True))

    assert targets(region_alert) == {east.pk, everyone.pk}
    assert targets(team_alert) == {east.pk, everyone.pk, team_bot.pk}
    assert south.pk not in targets(region_alert)
    # nothing is sent before a worker runs, and clearing adds nothing
    assert robot.received == []
    raise_alert(org, active=False)
    assert BotDelivery.objects.count() == 5


def test_the_message_is_chinese_with_the_absolute_link(org, settings):
    settings.SITE_URL = "https://crm.example.com"
    alert = raise_alert(org)
    message = message_of(alert)
    assert message["title"] == "华东 转化率预警"
    text = message["text"]
    assert "### 华东 转化率预警" in text
    assert "转化率 8% < 阈值 12%" in text  # the explanation's summary
    assert "建议" in text and "复盘渠道质量" in text
    assert "(https://crm.example.com/insights/funnel/?region=east)" in text


def test_an_explanation_without_summary_shows_its_facts(org):
    alert = raise_alert(org, explanation={"kind": "indicator", "version": 1, "value": 0.3, "weeks": [1, 2]})
    text = message_of(alert)["text"]
    assert "value: 0.3" in text and "weeks" not in text and "version" not in text


def test_inactive_recipients_are_not_told(org):
    org.bob.is_active = False
    org.bob.save()
    alert = alert_state_set(
        key="k",
        active=True,
        kind="indicator.stall",
        title="t",
        body="",
        explanation={},
        link="",
        recipients=[org.bob, org.alice, org.alice],
    )
    assert list(alert.recipients.all()) == [org.alice]
    assert Notification.objects.filter(user=org.alice).count() == 1


def test_a_key_too_long_to_store_is_refused(org):
    with pytest.raises(ValueError, match="at most 200"):
        raise_alert(org, key="k" * 201)
