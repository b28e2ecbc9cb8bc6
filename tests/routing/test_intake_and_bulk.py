"""Intake hands every new lead to routing (DESIGN.md data flow); an import chunk is routed in bulk
with the same engine and the same trace as one lead at a time."""

from __future__ import annotations

import pytest

from salesloop.core import explanations
from salesloop.crm.models import Lead
from salesloop.intake.services import source_create
from salesloop.notify.models import Notification
from salesloop.routing.models import Assignment, RoundRobinState
from salesloop.routing.selectors import assignment_explanation
from salesloop.routing.services import lead_route, leads_route_bulk
from tests.factories import lead_make
from tests.intake.conftest import SECRET, clue, signed_post
from tests.routing.conftest import definition, in_force, rule

pytestmark = pytest.mark.django_db


def test_a_webhook_lead_is_routed_and_its_owner_told_but_a_touch_is_not_rerouted(org, client):
    # given: a 广东 rule and a douyin source
    in_force(org.admin, definition(rule("gd", 10, when={"provinces": ["广东"]}, users=["erin"])))
    source = source_create(actor=None, kind="douyin", name="抖音", secret=SECRET)
    # when: a 广东 mobile number arrives (the province comes from the number)
    first = signed_post(client, source, clue(1, phone="13802512345"))
    # then: the answer names the lead, which erin owns, with its trace
    assert first.status_code == 200, first.content
    lead = Lead.objects.get(pk=first.json()["lead_id"])
    assert lead.owner_id == org.erin.pk and lead.assigned_at is not None
    assignment = Assignment.objects.get(lead=lead)
    assert assignment.rule_id == "gd" and assignment_explanation(assignment)["lead"]["province"] == "44"
    assert Notification.objects.filter(user=org.erin, kind="lead.assigned").count() == 1
    # when: the same person comes back (回流)
    again = signed_post(client, source, clue(2, phone="138 0251 2345"))
    # then: a touch on the same lead, no second assignment
    assert again.json()["status"] == "touch" and again.json()["lead_id"] == lead.pk
    assert Assignment.objects.filter(lead=lead).count() == 1


def test_a_chunk_is_routed_in_bulk_exactly_as_one_at_a_time(org):
    in_force(org.admin, definition(rule("east", 10, regions=["east"]), rule("south", 20, regions=["south"])))
    one_by_one = [lead_make(province=p) for p in ("31", "44", "32", "31", "45", "33")]
    for lead in one_by_one:
        lead_route(lead=lead)
    expected = [Lead.objects.get(pk=lead.pk).owner_id for lead in one_by_one]
    # reset the rotations and route the same shape of chunk in bulk
    RoundRobinState.objects.all().delete()
    chunk = [lead_make(province=p) for p in ("31", "44", "32", "31", "45", "33")]
    with_owner = lead_make(owner=org.alice)
    routed = leads_route_bulk(lead_ids=[lead.pk for lead in chunk] + [with_owner.pk])
    assert routed == len(chunk)
    got = [Lead.objects.get(pk=lead.pk).owner_id for lead in chunk]
    assert got == expected
    for assignment in Assignment.objects.filter(lead_id__in=[lead.pk for lead in chunk]):
        explanations.validate(assignment_explanation(assignment))  # the bulk path's traces match the schema
    assert not Assignment.objects.filter(lead=with_owner).exists()
    # routing the chunk again changes nothing
    assert leads_route_bulk(lead_ids=[lead.pk for lead in chunk]) == 0
    assert Assignment.objects.filter(lead_id__in=[lead.pk for lead in chunk]).count() == len(chunk)
