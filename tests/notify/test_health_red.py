"""The health red flag (SPEC C3.3) goes through the alerts' path: one alert per crossing (key
`health:red:lead:<id>`), cleared on recovery, in-app and to the region's group robots."""

from __future__ import annotations

import datetime as dt

import pytest

from salesloop.core import clock
from salesloop.health.services import lead_health_changed, leads_recompute
from salesloop.notify.models import Alert, BotDelivery, Notification
from salesloop.notify.outbox import deliveries_deliver
from tests.factories import lead_make
from tests.health.conftest import NOW, healthy, touch
from tests.notify.conftest import wecom_channel

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    clock.set_now(NOW)
    return NOW


def test_a_red_crossing_raises_one_alert_that_reaches_the_region_s_robot(org, robot, now):
    # given: 华东's robot, 华南's robot, and a healthy lead of alice's in 华东
    east = wecom_channel(robot, actor=org.admin, region=org.east, name="华东群")
    wecom_channel(robot, actor=org.admin, region=org.south, name="华南群")
    lead = lead_make(owner=org.alice, title="冷掉的项目")
    healthy(lead)
    lead_health_changed(lead_id=lead.pk)

    # when: three idle weeks take it below the red line, and the daily run goes on for a while
    clock.advance(dt.timedelta(days=21))
    leads_recompute()
    clock.advance(dt.timedelta(days=1))
    leads_recompute()

    # then: one open alert for the lead, with its breakdown as the explanation
    alert = Alert.objects.get()
    assert alert.key == f"health:red:lead:{lead.pk}" and alert.kind == "health.red" and alert.is_open
    assert alert.region == org.east and alert.link == f"/leads/{lead.pk}/"
    assert alert.explanation["kind"] == "health_score" and alert.explanation["red"] is True
    assert alert.suggested_response
    assert sorted(u.username for u in alert.recipients.all()) == ["alice", "carol"]
    # in-app once each, and one message to 华东's robot only
    assert Notification.objects.filter(kind="health.red").count() == 2
    assert list(BotDelivery.objects.values_list("channel_id", flat=True)) == [east.pk]
    deliveries_deliver()
    [message] = robot.delivered()
    content = message.body["markdown"]["content"]
    assert "冷掉的项目" in content and "最弱的信号" in content


def test_recovery_clears_the_alert_and_the_next_crossing_raises_a_new_one(org, robot, now):
    wecom_channel(robot, actor=org.admin, region=org.east)
    lead = lead_make(owner=org.alice)
    touch(lead)
    lead_health_changed(lead_id=lead.pk)  # one call: red at once
    first = Alert.objects.get()

    healthy(lead)
    lead_health_changed(lead_id=lead.pk)  # back above the line
    first.refresh_from_db()
    assert first.cleared_at == now

    clock.advance(dt.timedelta(days=30))
    leads_recompute()  # red again
    alerts = list(Alert.objects.order_by("id"))
    assert len(alerts) == 2 and alerts[1].is_open
    assert BotDelivery.objects.count() == 2  # one message per crossing


def test_a_silent_run_still_clears_the_alert_of_a_recovered_lead(org, now):
    lead = lead_make(owner=org.alice)
    touch(lead)
    lead_health_changed(lead_id=lead.pk)
    alert = Alert.objects.get()
    healthy(lead)
    leads_recompute(notify=False)
    alert.refresh_from_db()
    assert alert.cleared_at is not None
    assert Alert.objects.count() == 1
