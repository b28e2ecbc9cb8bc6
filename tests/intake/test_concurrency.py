"""Campaign bursts: many deliveries of one person at once must yield one person and one lead."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection, connections

from salesloop.crm.models import Contact, Lead
from salesloop.intake.models import InboundEvent
from salesloop.intake.services import event_receive, source_create

# serialized_rollback: the flush after a transactional test would otherwise wipe the reference data
# (provinces, the default pipeline) that migrations load.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_concurrent_arrivals_of_one_phone_make_one_lead(org):
    source = source_create(actor=None, kind="api", name="burst", secret="x" * 20)
    threads_n = 8
    barrier = threading.Barrier(threads_n)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def deliver(n: int) -> None:
        try:
            barrier.wait()
            item = {
                "id": f"burst-{n}",
                "name": f"客户{n}",
                "phone": "+86 139 1000 2000",
                "company": "并发测试有限公司",
            }
            outcome = event_receive(
                source=source, body=json.dumps(item, ensure_ascii=False), external_id=item["id"]
            )
            outcomes.append(outcome.status)
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors, errors
    assert sorted(outcomes) == ["created"] + ["touch"] * (threads_n - 1)
    assert Contact.objects.filter(phone="+8613910002000").count() == 1
    assert Lead.objects.count() == 1
    assert InboundEvent.objects.filter(lead__isnull=False).count() == threads_n
    assert connection.vendor in {"sqlite", "postgresql"}


def test_concurrent_replays_of_one_delivery_store_it_once(org):
    source = source_create(actor=None, kind="api", name="replay", secret="x" * 20)
    barrier = threading.Barrier(6)
    answers: list[tuple[int, str]] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            barrier.wait()
            item = {"id": "same-1", "name": "重放", "phone": "13910003000"}
            outcome = event_receive(
                source=source, body=json.dumps(item, ensure_ascii=False), external_id="same-1"
            )
            answers.append((outcome.event_id, outcome.status))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(set(answers)) == 1 and answers[0][1] == "created"
    assert InboundEvent.objects.count() == 1 and Lead.objects.count() == 1
