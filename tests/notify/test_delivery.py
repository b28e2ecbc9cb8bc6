"""The robots' outbox (SPEC C9) against a local robot speaking both protocols: payload formats,
DingTalk's signature, retries on the backoff schedule, failure after the last attempt, retry by
hand, and never a message twice (the doubtful cases: tests/notify/test_at_most_once.py)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import urllib.parse

import pytest
from django.core.management import call_command

from salesloop.core import clock
from salesloop.notify.bots import dingtalk_sign, request_of
from salesloop.notify.models import BotDelivery
from salesloop.notify.outbox import BACKOFF, MAX_ATTEMPTS, deliveries_deliver
from tests.notify.conftest import DINGTALK_SECRET, WECOM_KEY, dingtalk_channel, raise_alert, wecom_channel

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC)


@pytest.fixture
def now():
    clock.set_now(NOW)
    return NOW


def test_wecom_gets_a_markdown_message(org, robot, now):
    # given: a WeCom robot of 华东 and an alert of 华东
    wecom_channel(robot, actor=org.admin, region=org.east)
    alert = raise_alert(org)

    # when: the worker runs
    run = deliveries_deliver()

    # then: the robot accepted one markdown message with the alert's words and link
    assert (run.claimed, run.sent) == (1, 1)
    [message] = robot.delivered()
    assert message.robot == "wecom" and message.query["key"] == [WECOM_KEY]
    content = message.body["markdown"]["content"]
    assert "华东 转化率预警" in content and "/insights/funnel/?region=east" in content
    delivery = BotDelivery.objects.get(alert=alert)
    assert (delivery.status, delivery.attempts, delivery.sent_at) == ("sent", 1, now)
    assert '"errcode": 0' in delivery.response_body


def test_dingtalk_gets_a_signed_markdown_message(org, robot, now):
    dingtalk_channel(robot, actor=org.admin, region=org.east)
    raise_alert(org)

    assert deliveries_deliver().sent == 1

    [message] = robot.delivered()  # the robot recomputed the signature and accepted it
    assert message.robot == "dingtalk"
    assert message.query["timestamp"] == [str(int(now.timestamp() * 1000))]
    assert message.body["markdown"]["title"] == "华东 转化率预警"
    assert "复盘渠道质量" in message.body["markdown"]["text"]


def test_a_wrong_secret_is_refused_by_dingtalk_and_the_reason_kept(org, robot, now):
    dingtalk_channel(robot, actor=org.admin, region=org.east, secret="SECnot-the-robots-secret")
    alert = raise_alert(org)

    deliveries_deliver()

    delivery = BotDelivery.objects.get(alert=alert)
    assert delivery.status == "pending" and delivery.last_error.startswith("errcode 310000")
    assert robot.delivered() == []


def test_the_signature_is_url_encoded_base64_of_hmac_sha256():
    # given: a moment whose signature holds '+' or '/' (base64 characters a URL must encode)
    for timestamp in range(1764468000000, 1764468000100):
        digest = hmac.new(
            DINGTALK_SECRET.encode(), f"{timestamp}\n{DINGTALK_SECRET}".encode(), hashlib.sha256
        )
        plain = base64.b64encode(digest.digest()).decode()
        if "+" in plain or "/" in plain:
            break
    # then: the sign is that base64, URL-encoded, and decodes back to it
    sign = dingtalk_sign(timestamp_ms=timestamp, secret=DINGTALK_SECRET)
    assert "+" not in sign and "/" not in sign and "=" not in sign
    assert urllib.parse.unquote_plus(sign) == plain


def test_an_unsigned_dingtalk_robot_gets_no_signature():
    url, payload = request_of(
        kind="dingtalk",
        url="https://oapi.dingtalk.com/robot/send?access_token=t",
        secret="",
        title="标题",
        text="正文",
    )
    assert url == "https://oapi.dingtalk.com/robot/send?access_token=t"
    assert payload == {"msgtype": "markdown", "markdown": {"title": "标题", "text": "正文"}}


def test_a_long_wecom_message_is_cut_to_4096_bytes():
    _, payload = request_of(kind="wecom", url="u", secret="", title="t", text="预警" * 2000)
    content = payload["markdown"]["content"]
    # whole characters only: 1365 three-byte characters fit
    assert len(content.encode()) == 4095 and ("预警" * 2000).startswith(content)


def test_retries_follow_the_backoff_then_succeed(org, robot, now):
    # given: a robot that answers 500 once, then errcode 45009 (rate limit), then works
    wecom_channel(robot, actor=org.admin, region=org.east)
    alert = raise_alert(org)
    robot.fail("500", "45009")

    # when: the first try fails
    run = deliveries_deliver()
    delivery = BotDelivery.objects.get(alert=alert)
    # then: it waits a minute, with the reason kept
    assert (run.retrying, delivery.status, delivery.attempts) == (1, "pending", 1)
    assert delivery.last_error == "HTTP 500" and delivery.next_attempt_at == now + dt.timedelta(minutes=1)

    # nothing is due before then
    clock.advance(dt.timedelta(seconds=59))
    assert deliveries_deliver().claimed == 0

    # the second try is refused by the rate limit: five more minutes
    clock.advance(dt.timedelta(seconds=1))
    deliveries_deliver()
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.last_error.startswith("errcode 45009")
    assert delivery.next_attempt_at == clock.now() + dt.timedelta(minutes=5)

    # the third succeeds
    clock.advance(dt.timedelta(minutes=5))
    assert deliveries_deliver().sent == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 3, "")
    assert len(robot.received) == 3 and len(robot.delivered()) == 1


def test_it_gives_up_after_the_last_attempt_and_a_retry_sends_it(org, robot, now, api_as):
    # given: a robot that is down for six requests
    wecom_channel(robot, actor=org.admin, region=org.east)
    alert = raise_alert(org)
    robot.fail(*["500"] * MAX_ATTEMPTS)

    # when: the worker tries on the schedule: 1 min, 5 min, 30 min, 2 h, 12 h
    waits = []
    deliveries_deliver()
    for _ in range(MAX_ATTEMPTS - 1):
        delivery = BotDelivery.objects.get(alert=alert)
        waits.append(delivery.next_attempt_at - clock.now())
        clock.set_now(delivery.next_attempt_at)
        deliveries_deliver()

    # then: after the sixth failure the delivery is failed and stays so
    assert waits == list(BACKOFF)
    delivery = BotDelivery.objects.get(alert=alert)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("failed", MAX_ATTEMPTS, "HTTP 500")
    clock.advance(dt.timedelta(days=2))
    assert deliveries_deliver().claimed == 0

    # the failed list shows it; carol (华东's manager) retries it; it goes out
    api = api_as(org.carol)
    failed = api.get("/api/v1/alerts/deliveries", status="failed").json()["items"]
    assert [d["id"] for d in failed] == [delivery.pk] and failed[0]["last_error"] == "HTTP 500"
    answer = api.post(f"/api/v1/alerts/deliveries/{delivery.pk}/retry")
    assert answer.status_code == 200 and answer.json()["status"] == "pending"
    assert deliveries_deliver().sent == 1
    assert api.get("/api/v1/alerts/deliveries", status="failed").json()["items"] == []
    assert len(robot.delivered()) == 1


def test_nothing_is_sent_twice(org, robot, now):
    # given: an alert delivered to two robots
    wecom_channel(robot, actor=org.admin, region=org.east)
    dingtalk_channel(robot, actor=org.admin, region=org.east)
    raise_alert(org)
    assert deliveries_deliver().sent == 2

    # when: the worker runs again, later, and the indicator is evaluated again (still in warning)
    clock.advance(dt.timedelta(days=1))
    raise_alert(org)
    assert deliveries_deliver().claimed == 0
    call_command("bots_deliver", "--until-idle")

    # then: each robot got it once
    assert sorted(m.robot for m in robot.received) == ["dingtalk", "wecom"]


def test_the_command_reports_what_it_did(org, robot, now, capsys):
    wecom_channel(robot, actor=org.admin, region=org.east)
    raise_alert(org)
    call_command("bots_deliver")
    assert "1 claimed, 1 sent, 0 to retry, 0 failed, 0 uncertain" in capsys.readouterr().out


def test_a_raised_alert_goes_out_right_after_its_commit(org, robot, now, django_capture_on_commit_callbacks):
    # given: the tests' task backend runs tasks at once
    wecom_channel(robot, actor=org.admin, region=org.east)
    dingtalk_channel(robot, actor=org.admin, region=org.east)

    # when: two alerts are raised in one transaction
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        raise_alert(org)
        raise_alert(org, key="indicator:stall:week:region:east", kind="indicator.stall")

    # then: one delivery run started on commit and sent all four messages
    assert len(callbacks) == 1
    assert len(robot.delivered()) == 4
    assert set(BotDelivery.objects.values_list("status", flat=True)) == {"sent"}


def test_a_run_that_leaves_a_retry_schedules_the_next_run_for_it(org, robot, now, settings):
    from django_tasks import task_backends

    from salesloop.notify.tasks import bots_deliver

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    backend = task_backends["default"]
    wecom_channel(robot, actor=org.admin, region=org.east)
    raise_alert(org)
    robot.fail("500")

    assert bots_deliver.call() == {"claimed": 1, "sent": 0, "retrying": 1, "failed": 0, "uncertain": 0}
    [scheduled] = backend.results
    assert scheduled.task.run_after == now + dt.timedelta(minutes=1)

    # a run with nothing to do starts no second chain
    backend.clear()
    assert bots_deliver.call()["claimed"] == 0
    assert backend.results == []
