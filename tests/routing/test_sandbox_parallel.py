"""C8 item 9: a long replay runs the candidate in a second process; it must find exactly what one
process finds (a committed database: the child cannot see a test's open transaction)."""

from __future__ import annotations

import datetime as dt

import pytest

from salesloop.core import clock
from salesloop.routing import services
from salesloop.routing.models import RepProfile
from salesloop.routing.sandbox import replay
from tests.factories import customer_make, lead_make
from tests.routing.conftest import definition, in_force, rule

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

NOW = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)


def test_a_replay_in_two_processes_finds_what_one_process_finds(org):
    clock.set_now(NOW)
    in_force(org.admin, definition(rule("by-region", 10, lead_region=True)), since=dt.timedelta(days=200))
    RepProfile.objects.create(user=org.alice, specialties=["制造业"])
    candidate = services.ruleset_create(
        actor=org.director,
        definition=definition(
            rule("industry", 5, strategy="specialty", regions=["east", "south"]),
            rule("by-region", 10, lead_region=True),
        ),
    )
    for n in range(30):
        province = ["31", "44", "32"][n % 3]
        industry = "制造业" if n % 2 else "零售"
        customer = customer_make(province=province, industry=industry)
        lead_make(customer=customer, created_at=NOW - dt.timedelta(hours=n + 1))
    one = replay(candidate=candidate, parallel=False)
    two = replay(candidate=candidate, parallel=True)
    assert two.metrics["candidate"] == one.metrics["candidate"]
    assert two.metrics["current"] == one.metrics["current"]
    assert two.findings == one.findings and two.leads == one.leads == 30
    # the candidate really differs from the current rules, so the comparison is not vacuous
    assert one.metrics["candidate"]["region_match_rate"] < one.metrics["current"]["region_match_rate"]
