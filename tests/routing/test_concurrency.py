"""C8 item 3: round-robin state lives in the database. Many simultaneous arrivals give a distribution
exactly as fair as one at a time: no lead assigned twice, no rep skipped."""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
from django.db import connections

from salesloop.crm.models import Lead
from salesloop.intake.services import event_receive, source_create
from salesloop.routing.models import Assignment, RoundRobinState
from tests.factories import user_make
from tests.routing.conftest import definition, in_force, rule

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_simultaneous_arrivals_share_out_exactly_as_one_at_a_time(org):
    # given: five east reps in a round-robin, and a burst of 40 different people from 华东
    extra = [user_make("rep", org.east, username=f"east{n}") for n in range(3)]
    reps = sorted([org.alice.pk, org.bob.pk, *(u.pk for u in extra)])
    in_force(org.admin, definition(rule("east", 10, regions=["east"])))
    source = source_create(actor=None, kind="api", name="campaign burst", secret="x" * 20)
    threads_n, per_thread = 8, 5
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def deliver(t: int) -> None:
        try:
            barrier.wait()
            for k in range(per_thread):
                n = t * per_thread + k
                item = {
                    "id": f"c-{n}",
                    "name": f"客户{n}",
                    "phone": f"+86 139 {n:04d} 5678",
                    "company": f"公司{n}",
                }
                item["province"] = "上海"
                event_receive(
                    source=source, body=json.dumps(item, ensure_ascii=False), external_id=item["id"]
                )
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    # when: eight threads deliver at once
    threads = [threading.Thread(target=deliver, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then: every lead routed exactly once, and each rep got exactly 40 / 5 = 8
    assert not errors, errors
    leads = Lead.objects.count()
    assert leads == threads_n * per_thread
    assert Assignment.objects.count() == leads
    assert Assignment.objects.values("lead_id").distinct().count() == leads
    per_rep = Counter(Lead.objects.values_list("owner_id", flat=True))
    assert dict(per_rep) == {rep: leads // len(reps) for rep in reps}
    # and in the order of the assignments, the rotation never skipped anyone: each run of five
    # consecutive assignments names every rep once
    order = list(Assignment.objects.order_by("id").values_list("assignee_id", flat=True))
    for start in range(0, leads, len(reps)):
        assert sorted(order[start : start + len(reps)]) == reps
    state = RoundRobinState.objects.get(key="rule:east")
    assert state.turns == leads and sum(state.counts.values()) == leads
