"""Routing's loads — each rep's open leads and the leads they received today — are kept by the
database (routing/loads.py: triggers on the leads and the assignments), so that a routed batch reads
one row per rep instead of counting the book. Whatever writes the leads, the kept rows must equal a
count of them."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from salesloop.core import clock
from salesloop.crm.models import Lead, LeadStatus
from salesloop.routing import loads
from salesloop.routing.apps import _loads_kept
from salesloop.routing.models import Assignment, AssignmentMethod, OpenLeads
from salesloop.routing.roster import loads_count, loads_sql
from salesloop.routing.services import lead_route, leads_route_bulk
from tests.factories import lead_make
from tests.routing.conftest import definition, in_force, rule


def kept_loads() -> tuple[dict[int, int], dict[tuple[int, int], int]]:
    """The kept rows, without rows that went back to zero."""
    return loads.loads_kept_rows()


def counted_loads() -> tuple[dict[int, int], dict[tuple[int, int], int]]:
    """The same, counted from the leads and the assignments themselves."""
    open_leads = Counter(
        Lead.objects.filter(status=LeadStatus.OPEN, owner__isnull=False).values_list("owner_id", flat=True)
    )
    quarters = Counter(
        (assignee_id, int(at.timestamp()) // loads.QUARTER_SECONDS)
        for assignee_id, at in Assignment.objects.filter(assignee__isnull=False).values_list(
            "assignee_id", "created_at"
        )
    )
    return dict(open_leads), dict(quarters)


def _assignment(lead: Lead, assignee, at: dt.datetime) -> Assignment:
    return Assignment.objects.create(
        lead=lead, assignee=assignee, method=AssignmentMethod.MANUAL, explanation={}, created_at=at
    )


def test_the_status_the_triggers_count_is_the_open_status():
    assert LeadStatus.OPEN.value == loads.OPEN_STATUS


ACTIONS = ["create", "create", "route", "bulk", "owner", "status", "many", "delete", "move"]


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kept_loads_equal_a_count_after_any_sequence_of_writes(org, seed):
    """Leads created with and without owners, routed one at a time and in bulk, reassigned, closed,
    reopened, updated many at once and deleted (their assignments with them); assignments moved
    to another rep or another moment: after every step the kept rows are the count."""
    rng = random.Random(seed)
    in_force(org.admin, definition(rule("east", 10, regions=["east"])))
    reps = [org.alice, org.bob, org.carol, org.erin]
    leads: list[Lead] = []
    for step in range(40):
        action = rng.choice(
            ["create", "create", "route", "bulk", "owner", "status", "many", "delete", "move"]
        )
        if action == "create" or not leads:
            leads.append(lead_make(owner=rng.choice([*reps, None])))
        elif action == "route":
            lead = lead_make()
            lead_route(lead=lead)
            leads.append(lead)
        elif action == "bulk":
            fresh = [lead_make() for _ in range(rng.randint(1, 4))]
            leads_route_bulk(lead_ids=[lead.pk for lead in fresh], actor=org.admin)
            leads += fresh
        elif action == "owner":
            Lead.objects.filter(pk=rng.choice(leads).pk).update(owner=rng.choice([*reps, None]))
        elif action == "status":
            status = rng.choice([LeadStatus.OPEN, LeadStatus.LOST, LeadStatus.WON])
            Lead.objects.filter(pk=rng.choice(leads).pk).update(status=status)
        elif action == "many":  # one statement over several leads: owner and status at once
            chosen = [lead.pk for lead in rng.sample(leads, min(len(leads), 3))]
            Lead.objects.filter(pk__in=chosen).update(
                owner=rng.choice(reps), status=rng.choice([LeadStatus.OPEN, LeadStatus.LOST])
            )
        elif action == "delete":
            lead = leads.pop(rng.randrange(len(leads)))
            Lead.objects.filter(pk=lead.pk).delete()
        else:
            lead = rng.choice(leads)
            assignment = _assignment(lead, rng.choice(reps), clock.now())
            Assignment.objects.filter(pk=assignment.pk).update(
                assignee=rng.choice([*reps, None]),
                created_at=clock.now() - dt.timedelta(hours=rng.randint(0, 30)),
            )
        assert kept_loads() == counted_loads(), (step, action)
    assert kept_loads()[0], "the sequence left someone an open lead"


@pytest.mark.django_db
def test_the_leads_received_today_start_at_the_local_midnight(org, settings):
    """A rep's new-per-day cap counts from their organisation's midnight: quarter hours add up to
    it in any time zone, and a moment a split second before a quarter hour stays in the one before
    (SQLite's `strftime('%s')` rounds a fraction to the millisecond)."""
    for zone in ("Asia/Shanghai", "Asia/Kolkata", "Asia/Kathmandu"):
        settings.TIME_ZONE = zone
        Assignment.objects.all().delete()
        midnight = dt.datetime(2026, 11, 30, tzinfo=ZoneInfo(zone))
        lead = lead_make()
        _assignment(lead, org.alice, midnight - dt.timedelta(microseconds=200))
        _assignment(lead, org.alice, midnight)
        _assignment(lead, org.alice, midnight + dt.timedelta(hours=23, minutes=59))
        _assignment(lead, org.bob, midnight + dt.timedelta(minutes=14, seconds=59, microseconds=999_900))
        _, today = loads_count([org.alice.pk, org.bob.pk], midnight + dt.timedelta(hours=12))
        assert today == {org.alice.pk: 2, org.bob.pk: 1}, zone
        _, yesterday = loads_count([org.alice.pk], midnight - dt.timedelta(hours=1))
        assert yesterday == {org.alice.pk: 3}, zone  # since the day before's midnight


@pytest.mark.django_db
def test_a_routed_batch_reads_the_kept_rows_not_the_leads(org):
    """The loads' statement reads one row per rep (and a day's quarter hours), never the leads or
    the assignments; what it answers is what counting them answers."""
    lead_make(owner=org.alice)
    Lead.objects.filter(pk=lead_make(owner=org.alice).pk).update(status=LeadStatus.LOST)
    in_force(org.admin, definition(rule("east", 10, regions=["east"])))
    routed = lead_make()
    assert lead_route(lead=routed) is not None
    routed.refresh_from_db()
    sql = loads_sql(2)
    assert "crm_lead" not in sql and "routing_assignment " not in sql
    open_leads, today = loads_count([org.alice.pk, org.bob.pk], clock.now())
    assert open_leads == {org.alice.pk: 1 + (routed.owner_id == org.alice.pk)} | (
        {org.bob.pk: 1} if routed.owner_id == org.bob.pk else {}
    )
    assert today == {routed.owner_id: 1}


@pytest.mark.django_db
def test_triggers_lost_with_a_rebuilt_table_are_put_back_and_the_loads_counted_again(org):
    """SQLite drops a table's triggers with the table, and Django rebuilds a table to alter it: after
    every `migrate` the missing triggers come back and the rows are counted again."""
    lead_make(owner=org.alice)
    name = "routing_open_leads_insert"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"DROP TRIGGER {name} ON crm_lead")
        else:
            cursor.execute(f"DROP TRIGGER {name}")
    lead_make(owner=org.alice)  # not counted: the trigger is gone
    assert kept_loads()[0] == {org.alice.pk: 1}
    _loads_kept(using="default")
    assert name in loads.triggers_present(connection)
    assert kept_loads() == counted_loads() and kept_loads()[0] == {org.alice.pk: 2}
    lead_make(owner=org.alice)
    assert kept_loads()[0] == {org.alice.pk: 3}
    assert not loads.loads_kept(connection)  # nothing missing now: nothing done


@pytest.mark.django_db
def test_the_recount_command_corrects_what_drifted_and_says_so(org):
    import io

    from django.core.management import call_command

    lead_make(owner=org.alice)
    lead_make(owner=org.bob)
    OpenLeads.objects.filter(user_id=org.alice.pk).update(open_leads=99)  # drifted (a restored backup…)
    out = io.StringIO()
    call_command("routing_loads_recount", stdout=out)
    assert kept_loads() == counted_loads() and kept_loads()[0] == {org.alice.pk: 1, org.bob.pk: 1}
    assert "2 users with open leads (1 corrected)" in out.getvalue()
    assert "triggers all present" in out.getvalue()
