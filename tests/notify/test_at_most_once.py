"""At most once automatically, every doubt visible and retryable by a person (docs/alerts.md, issue
7 item 4). Real HTTP against the local fake robot: a request that left without an answer, or a
claim a dead worker left behind, ends `uncertain` and is never sent again by a worker; a request
that never left keeps the retry schedule; a person's retry sends it once."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from salesloop.core import clock
from salesloop.notify.models import BotDelivery
from salesloop.notify.outbox import (
    ABANDONED_ERROR,
    BACKOFF,
    CLAIM_LEASE,
    DeliveryRun,
    deliveries_claim,
    deliveries_deliver,
    delivery_retry,
    delivery_send,
)
from tests.notify.conftest import raise_alert, wecom_channel

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC)
EVERY_BACKOFF = sum(BACKOFF, dt.timedelta()) + CLAIM_LEASE


@pytest.fixture
def now():
    clock.set_now(NOW)
    return NOW


def runs_long_after() -> list[int]:
    """What workers claim over the next days: a run after every backoff step, then a late one."""
    claimed = []
    for wait in (*BACKOFF, CLAIM_LEASE, EVERY_BACKOFF):
        clock.advance(wait + dt.timedelta(seconds=1))
        claimed.append(deliveries_deliver().claimed)
    call_command("bots_deliver", "--until-idle")
    return claimed


class TestSentWithoutAnAnswer:
    def test_a_robot_that_never_answers_leaves_it_uncertain_and_it_is_not_sent_again(
        self, org, robot, now, settings
    ):
        # given: a robot that reads the request and never answers, and a short timeout
        settings.SALESLOOP_BOT_TIMEOUT = 0.3
        wecom_channel(robot, actor=org.admin, region=org.east)
        alert = raise_alert(org)
        robot.fail("hang")

        # when: the worker sends it
        run = deliveries_deliver()

        # then: the outcome is unknown, said so, and counted
        assert (run.claimed, run.sent, run.retrying, run.uncertain) == (1, 0, 0, 1)
        delivery = BotDelivery.objects.get(alert=alert)
        assert (delivery.status, delivery.attempts, delivery.claimed_at) == ("uncertain", 1, None)
        assert delivery.last_error.startswith("no answer: timed out")
        assert "may or may not have received it" in delivery.last_error

        # and no later run sends it again: the robot saw exactly one request
        assert runs_long_after() == [0] * (len(BACKOFF) + 2)
        assert len(robot.received) == 1
        assert BotDelivery.objects.get(alert=alert).status == "uncertain"

    @pytest.mark.parametrize("mode", ["drop", "cut"])
    def test_a_connection_ended_after_the_request_leaves_it_uncertain(self, org, robot, now, mode):
        # given: the robot reads the request, then closes without answering / mid-answer
        wecom_channel(robot, actor=org.admin, region=org.east)
        alert = raise_alert(org)
        robot.fail(mode)

        assert deliveries_deliver().uncertain == 1

        delivery = BotDelivery.objects.get(alert=alert)
        assert delivery.status == "uncertain" and delivery.last_error.startswith("no answer")
        assert runs_long_after() == [0] * (len(BACKOFF) + 2)
        assert len(robot.received) == 1


class TestNeverSent:
    def test_a_refused_connection_is_retried_and_sent_once_the_robot_is_up(self, org, robot_down, now):
        # given: the robot's port refuses connections
        wecom_channel(robot_down, actor=org.admin, region=org.east)
        alert = raise_alert(org)

        # when: the worker tries
        run = deliveries_deliver()

        # then: certainly not delivered, so it waits for the backoff like any failure
        delivery = BotDelivery.objects.get(alert=alert)
        assert (run.retrying, run.uncertain) == (1, 0)
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        assert delivery.last_error.startswith("not sent:") and "refused" in delivery.last_error
        assert delivery.next_attempt_at == now + BACKOFF[0]

        # when: the robot is up and the minute has passed
        robot_down.start()
        clock.advance(BACKOFF[0])
        assert deliveries_deliver().sent == 1

        # then: it went out once
        assert runs_long_after() == [0] * (len(BACKOFF) + 2)
        assert len(robot_down.received) == 1 and len(robot_down.delivered()) == 1

    @pytest.mark.parametrize("mode,error", [("500", "HTTP 500"), ("notjson", "the answer is not JSON")])
    def test_an_answer_saying_no_is_retried(self, org, robot, now, mode, error):
        wecom_channel(robot, actor=org.admin, region=org.east)
        alert = raise_alert(org)
        robot.fail(mode)

        assert deliveries_deliver().retrying == 1
        delivery = BotDelivery.objects.get(alert=alert)
        assert (delivery.status, delivery.last_error) == ("pending", error)

        clock.advance(BACKOFF[0])
        assert deliveries_deliver().sent == 1
        assert len(robot.received) == 2 and len(robot.delivered()) == 1


class TestAWorkerThatDied:
    def test_its_claim_turns_uncertain_after_the_lease_and_is_not_sent(self, org, robot, now):
        # given: a worker claimed the delivery and died before (or while) sending
        wecom_channel(robot, actor=org.admin, region=org.east)
        alert = raise_alert(org)
        assert len(deliveries_claim()) == 1

        # within the lease, other workers leave it alone
        clock.advance(CLAIM_LEASE - dt.timedelta(seconds=1))
        assert deliveries_deliver() == DeliveryRun()  # nothing marked, nothing claimed
        assert BotDelivery.objects.get(alert=alert).status == "sending"

        # when: the next run comes after the lease
        clock.advance(dt.timedelta(seconds=2))
        run = deliveries_deliver()

        # then: it is marked uncertain with a readable reason, counted, and nothing is sent
        assert (run.claimed, run.uncertain) == (0, 1)
        delivery = BotDelivery.objects.get(alert=alert)
        assert (delivery.status, delivery.last_error) == ("uncertain", ABANDONED_ERROR)
        assert runs_long_after() == [0] * (len(BACKOFF) + 2)
        assert robot.received == []

    def test_the_task_reports_it(self, org, robot, now):
        from salesloop.notify.tasks import bots_deliver

        wecom_channel(robot, actor=org.admin, region=org.east)
        raise_alert(org)
        deliveries_claim()
        clock.advance(CLAIM_LEASE + dt.timedelta(seconds=1))
        assert bots_deliver.call() == {"claimed": 0, "sent": 0, "retrying": 0, "failed": 0, "uncertain": 1}

    def test_a_worker_that_only_stalled_still_records_what_the_robot_answered(self, org, robot, now):
        # given: a claim marked uncertain because its worker went quiet past the lease
        wecom_channel(robot, actor=org.admin, region=org.east)
        alert = raise_alert(org)
        [delivery_id] = deliveries_claim()
        clock.advance(CLAIM_LEASE + dt.timedelta(seconds=1))
        assert deliveries_deliver().uncertain == 1

        # when: the stalled worker wakes up and sends
        assert delivery_send(delivery_id=delivery_id) == "sent"

        # then: the robot's answer replaces the doubt
        delivery = BotDelivery.objects.get(alert=alert)
        assert (delivery.status, delivery.last_error) == ("sent", "")
        assert len(robot.delivered()) == 1


class TestAPersonRetries:
    @pytest.fixture
    def uncertain(self, org, robot, now):
        wecom_channel(robot, actor=org.admin, region=org.east)
        alert = raise_alert(org)
        robot.fail("drop")
        deliveries_deliver()
        delivery = BotDelivery.objects.get(alert=alert)
        assert delivery.status == "uncertain"
        return delivery

    def test_an_uncertain_delivery_retried_is_sent_once(self, org, robot, uncertain, api_as):
        # when: carol looked in the group, did not find it, and retries
        answer = api_as(org.carol).post(f"/api/v1/alerts/deliveries/{uncertain.pk}/retry")
        assert answer.status_code == 200 and answer.json()["status"] == "pending"

        # then: the next run sends it, once
        assert deliveries_deliver().sent == 1
        assert runs_long_after() == [0] * (len(BACKOFF) + 2)
        assert len(robot.received) == 2 and len(robot.delivered()) == 1
        uncertain.refresh_from_db()
        assert (uncertain.status, uncertain.attempts) == ("sent", 1)

    def test_a_sent_delivery_cannot_be_retried(self, org, robot, uncertain, api_as):
        delivery_retry(actor=org.carol, delivery=uncertain)
        deliveries_deliver()

        with pytest.raises(ValidationError) as refused:
            delivery_retry(actor=org.carol, delivery=uncertain)
        assert "status" in refused.value.message_dict

        answer = api_as(org.carol).post(f"/api/v1/alerts/deliveries/{uncertain.pk}/retry")
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "status"]
        assert len(robot.delivered()) == 1

    def test_the_retry_is_audited_with_the_doubt_it_resolved(self, org, uncertain):
        from salesloop.core.models import AuditEntry

        delivery_retry(actor=org.carol, delivery=uncertain)
        entry = AuditEntry.objects.get(action="notify.delivery_retry")
        assert (entry.actor, entry.before["status"], entry.after["status"]) == (
            org.carol,
            "uncertain",
            "pending",
        )
        assert entry.before["last_error"].startswith("no answer")
