"""Alert pages (SPEC C9): the alerts in scope with why, what to do and where they went; the failed
deliveries with a retry; the robots' form re-rendered with errors by field and the input kept."""

from __future__ import annotations

import pytest

from salesloop.notify.models import BotChannel, BotDelivery
from tests.notify.conftest import DINGTALK_SECRET, WECOM_KEY, raise_alert, wecom_channel

pytestmark = pytest.mark.django_db

WECOM_URL = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={WECOM_KEY}"


def text(response) -> str:
    assert response.status_code in (200, 400), response.status_code
    return response.content.decode()


class TestAlertList:
    def test_an_alert_shows_why_what_to_do_the_link_and_each_robot(self, client, org, robot):
        wecom_channel(robot, actor=org.admin, region=org.east, name="华东销售群")
        raise_alert(org)
        client.force_login(org.carol)
        body = text(client.get("/alerts/"))
        assert "华东 转化率预警" in body
        assert "转化率 8% &lt; 阈值 12%" in body  # the explanation
        assert "复盘渠道质量" in body  # the suggested response
        assert 'href="/insights/funnel/?region=east"' in body
        assert "华东销售群 · 待发送" in body  # the robot and its delivery's state

    def test_others_do_not_see_it(self, client, org):
        raise_alert(org)
        for who in (org.alice, org.dave):
            client.force_login(who)
            assert "转化率预警" not in text(client.get("/alerts/"))

    def test_the_open_filter(self, client, org):
        raise_alert(org, key="a", title="旧的预警")
        raise_alert(org, key="a", active=False)
        raise_alert(org, key="b", title="新的预警")
        client.force_login(org.carol)
        body = text(client.get("/alerts/", {"status": "open"}))
        assert "新的预警" in body and "旧的预警" not in body

    def test_the_page_takes_a_fixed_number_of_queries(self, client, org, robot, django_assert_num_queries):
        wecom_channel(robot, actor=org.admin, region=org.east)
        for n in range(6):
            raise_alert(org, key=f"k{n}")
        client.force_login(org.carol)
        # session, user, the alerts, their deliveries with channels
        with django_assert_num_queries(4):
            assert client.get("/alerts/").status_code == 200

    def test_anonymous_visitors_log_in_first(self, client):
        assert client.get("/alerts/").status_code == 302


class TestDeliveries:
    def test_a_failed_delivery_is_listed_and_retried(self, client, org, robot):
        wecom_channel(robot, actor=org.admin, region=org.east)
        raise_alert(org)
        delivery = BotDelivery.objects.get()
        BotDelivery.objects.filter(pk=delivery.pk).update(status="failed", attempts=6, last_error="HTTP 500")
        client.force_login(org.carol)
        body = text(client.get("/alerts/deliveries/", {"status": "failed"}))
        assert "HTTP 500" in body and f"/alerts/deliveries/{delivery.pk}/retry" in body

        answer = client.post(f"/alerts/deliveries/{delivery.pk}/retry")
        assert answer.status_code == 302
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("pending", 0)

    def test_deliveries_to_check_lists_the_uncertain_with_a_retry_and_why(self, client, org, robot):
        # given: one delivery given up on, one whose outcome is unknown, one sent
        wecom_channel(robot, actor=org.admin, region=org.east)
        raise_alert(org, key="a", title="预警甲")
        raise_alert(org, key="b", title="预警乙")
        raise_alert(org, key="c", title="预警丙")
        failed, uncertain, sent = BotDelivery.objects.order_by("id")
        BotDelivery.objects.filter(pk=failed.pk).update(status="failed", last_error="HTTP 500")
        BotDelivery.objects.filter(pk=uncertain.pk).update(status="uncertain", last_error="no answer")
        BotDelivery.objects.filter(pk=sent.pk).update(status="sent")
        client.force_login(org.carol)

        # the alerts page links to the deliveries that need a person
        assert 'href="/alerts/deliveries/?status=failed,uncertain"' in text(client.get("/alerts/"))

        # when: carol opens it
        body = text(client.get("/alerts/deliveries/", {"status": "failed,uncertain"}))

        # then: both are there with a retry, the unknown one explained; the sent one is not
        assert "预警甲" in body and "预警乙" in body and "预警丙" not in body
        assert f"/alerts/deliveries/{failed.pk}/retry" in body
        assert f"/alerts/deliveries/{uncertain.pk}/retry" in body
        assert "未确认，请检查群消息" in body and "请先到群里查看" in body
        assert client.post(f"/alerts/deliveries/{uncertain.pk}/retry").status_code == 302
        uncertain.refresh_from_db()
        assert (uncertain.status, uncertain.attempts) == ("pending", 0)

    def test_a_bad_status_is_a_400_saying_so(self, client, org):
        client.force_login(org.carol)
        answer = client.get("/alerts/deliveries/", {"status": "failed,lost"})
        assert answer.status_code == 400
        assert "failed,lost" in text(answer) and "uncertain" in text(answer)

    def test_reps_may_not_see_deliveries_and_other_managers_get_404(self, client, org, robot):
        wecom_channel(robot, actor=org.admin, region=org.east)
        raise_alert(org)
        delivery = BotDelivery.objects.get()
        client.force_login(org.alice)
        assert client.get("/alerts/deliveries/").status_code == 403
        assert client.post(f"/alerts/deliveries/{delivery.pk}/retry").status_code == 403
        client.force_login(org.dave)
        assert client.post(f"/alerts/deliveries/{delivery.pk}/retry").status_code == 404


class TestChannels:
    def test_a_manager_adds_a_robot_for_the_region(self, client, org):
        client.force_login(org.carol)
        form = {
            "kind": "wecom",
            "name": "华东销售群",
            "webhook_url": WECOM_URL,
            "scope": f"region:{org.east.pk}",
            "enabled": "on",
        }
        assert client.post("/alerts/channels/", form).status_code == 302
        channel = BotChannel.objects.get()
        assert (channel.region, channel.created_by, channel.enabled) == (org.east, org.carol, True)
        body = text(client.get("/alerts/channels/"))
        assert "华东销售群" in body and WECOM_KEY not in body
        assert 'value="indicator.stall"' in body and "停滞预警" in body  # kinds named for people

    def test_errors_are_shown_by_field_with_the_input_kept(self, client, org):
        client.force_login(org.admin)
        form = {
            "kind": "wecom",
            "name": "华东销售群",
            "webhook_url": "https://evil.example.com/hook",
            "scope": "",
        }
        answer = client.post("/alerts/channels/", form)
        body = text(answer)
        assert answer.status_code == 400
        assert 'value="华东销售群"' in body and 'value="https://evil.example.com/hook"' in body
        assert "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=" in body  # what a webhook looks like
        assert BotChannel.objects.count() == 0

    def test_editing_keeps_the_secret_and_never_shows_it(self, client, org, robot):
        from salesloop.notify.channels import channel_create

        channel = channel_create(
            actor=org.admin,
            kind="dingtalk",
            name="钉钉群",
            webhook_url="https://oapi.dingtalk.com/robot/send?access_token=abcdef123456",
            secret=DINGTALK_SECRET,
            region_id=org.east.pk,
        )
        client.force_login(org.carol)
        body = text(client.get(f"/alerts/channels/{channel.pk}/"))
        assert DINGTALK_SECRET not in body and "abcdef123456" not in body
        form = {"name": "钉钉群（华东）", "webhook_url": "", "secret": "", "scope": f"region:{org.east.pk}"}
        assert client.post(f"/alerts/channels/{channel.pk}/", form).status_code == 302
        channel.refresh_from_db()
        assert (channel.name, channel.secret, channel.enabled) == ("钉钉群（华东）", DINGTALK_SECRET, False)
        assert channel.webhook_url.endswith("access_token=abcdef123456")

    def test_who_may_open_the_robots(self, client, org):
        made = wecom_channel_for(org)
        client.force_login(org.alice)
        assert client.get("/alerts/channels/").status_code == 403
        client.force_login(org.dave)
        assert client.get(f"/alerts/channels/{made.pk}/").status_code == 404
        assert client.post(f"/alerts/channels/{made.pk}/", {"name": "x"}).status_code == 404
        client.force_login(org.carol)
        assert client.get(f"/alerts/channels/{made.pk}/").status_code == 200


def wecom_channel_for(org) -> BotChannel:
    from salesloop.notify.channels import channel_create

    return channel_create(
        actor=org.admin, kind="wecom", name="华东群", webhook_url=WECOM_URL, region_id=org.east.pk
    )
