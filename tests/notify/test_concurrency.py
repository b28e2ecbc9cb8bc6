"""Alerts under concurrency: two evaluations at once raise one alert; two workers at once never
claim (or send) one delivery twice. Real threads, real connections, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections

from salesloop.notify.models import Alert, BotDelivery, Notification
from salesloop.notify.outbox import deliveries_claim, delivery_send
from tests.notify.conftest import dingtalk_channel, raise_alert, wecom_channel

# serialized_rollback: the flush after a transactional test would otherwise wipe the reference data
# (provinces, the default pipeline) that migrations load.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def in_threads(n: int, work: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results.append(work(i))
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def test_two_evaluations_at_once_raise_one_alert(org):
    # when: six evaluations of one indicator find it in warning at the same moment
    raised = in_threads(6, lambda i: raise_alert(org))

    # then: one of them raised the alert; carol heard once
    assert sum(1 for alert in raised if alert is not None) == 1
    assert Alert.objects.count() == 1
    assert Notification.objects.filter(user=org.carol).count() == 1


def test_two_workers_never_claim_one_delivery(org, robot, settings):
    # given: twenty alerts waiting for two robots (forty deliveries); the robot answers slowly so
    # the workers overlap. No kick after commit: the workers below are the only senders.
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    wecom_channel(robot, actor=org.admin, region=org.east)
    dingtalk_channel(robot, actor=org.admin, region=org.east)
    for n in range(20):
        raise_alert(org, key=f"indicator:conversion:week:region:east:{n}", title=f"华东 转化率预警 {n}")
    assert BotDelivery.objects.count() == 40
    robot.delay = 0.01

    # when: four workers claim and send at once, each in batches of five, until nothing is due
    def worker(_: int) -> list[int]:
        mine: list[int] = []
        while batch := deliveries_claim(limit=5):
            mine += batch
            for delivery_id in batch:
                delivery_send(delivery_id=delivery_id)
        return mine

    claims = in_threads(4, worker)

    # then: every delivery was claimed by exactly one worker, and each robot got each alert once
    everything = [d for claim in claims for d in claim]
    assert sorted(everything) == sorted(BotDelivery.objects.values_list("id", flat=True))
    assert len(everything) == len(set(everything)) == 40
    assert BotDelivery.objects.filter(status="sent", attempts=1).count() == 40
    texts = [(r.robot, str(r.body)) for r in robot.delivered()]
    assert len(texts) == len(set(texts)) == 40


def test_workers_at_once_mark_a_dead_workers_claims_once_and_send_none(org, robot, settings):
    # given: ten deliveries a worker claimed and then died holding, the lease long past
    import datetime as dt

    from salesloop.core import clock
    from salesloop.notify.outbox import CLAIM_LEASE, deliveries_deliver

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    wecom_channel(robot, actor=org.admin, region=org.east)
    for n in range(10):
        raise_alert(org, key=f"indicator:conversion:week:region:east:{n}", title=f"华东 转化率预警 {n}")
    assert len(deliveries_claim()) == 10
    clock.advance(CLAIM_LEASE + dt.timedelta(minutes=1))

    # when: four workers run at once
    runs = in_threads(4, lambda i: deliveries_deliver())

    # then: each row was marked uncertain by exactly one of them, and nothing was sent
    assert sum(run.uncertain for run in runs) == 10 and sum(run.claimed for run in runs) == 0
    assert BotDelivery.objects.filter(status="uncertain").count() == 10
    assert robot.received == []
