"""The demo's routing: a version in force, the incident's draft ready for the sandbox, a committee,
and the pool's leads routed with their traces."""

from __future__ import annotations

import pytest

from salesloop.core import explanations
from salesloop.crm.models import Lead
from salesloop.demo.generator import seed_run
from salesloop.demo.org import demo_org_ensure
from salesloop.demo.routing import demo_routing_ensure
from salesloop.routing.models import Assignment, RepProfile, RuleSet, RuleSetStatus
from salesloop.routing.selectors import assignment_explanation
from salesloop.routing.services import policy_get, ruleset_in_force

pytestmark = pytest.mark.django_db


def test_the_demo_has_routing_in_force_and_routes_its_pool(frozen_now):
    seed_run(leads=300, seed=7)
    pool = Lead.objects.filter(owner__isnull=True, status="open").count()
    assert pool > 0  # the generator leaves ~3% in the pool
    routed = demo_routing_ensure(demo_org_ensure())
    assert routed == pool and not Lead.objects.filter(owner__isnull=True, status="open").exists()
    live = ruleset_in_force()
    assert live is not None and live.name == "按区域轮转"
    draft = RuleSet.objects.get(status=RuleSetStatus.DRAFT)
    assert draft.based_on == live and draft.definition["rules"][0]["strategy"] == "specialty"
    assert policy_get().committee.count() == 5  # the director and the four regional managers
    assert RepProfile.objects.exclude(specialties=[]).count() == 2
    for assignment in Assignment.objects.all():
        explanations.validate(assignment_explanation(assignment))
        lead = Lead.objects.select_related("owner", "region").get(pk=assignment.lead_id)
        assert assignment.rule_id == "by-region" and lead.owner.region_id == lead.region_id
    assert demo_routing_ensure(demo_org_ensure()) == 0  # a second run changes nothing
