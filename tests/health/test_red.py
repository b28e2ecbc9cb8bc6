"""The red flag (SPEC C3.3): owner and the region's manager hear once per crossing."""

from __future__ import annotations

import datetime as dt

import pytest

from salesloop.core import clock
from salesloop.health.models import LeadHealth
from salesloop.health.services import NOTIFICATION_KIND, lead_health_changed, leads_recompute
from salesloop.notify.models import Notification
from tests.factories import lead_make
from tests.health.conftest import healthy, touch

pytestmark = pytest.mark.django_db


def notified() -> list[str]:
    return sorted(
        Notification.objects.filter(kind=NOTIFICATION_KIND).values_list("user__username", flat=True)
    )


def test_crossing_notifies_owner_and_manager_once_and_again_after_recovery(org, now):
    # given: a healthy lead (60) of alice's in 华东
    lead = lead_make(owner=org.alice)
    healthy(lead)
    lead_health_changed(lead_id=lead.pk)
    assert LeadHealth.objects.get(lead=lead).red is False
    assert notified() == []

    # when: three idle weeks pass, the daily run takes it below 40
    clock.advance(dt.timedelta(days=21))
    leads_recompute()
    health = LeadHealth.objects.get(lead=lead)
    assert health.score < 40 and health.red and health.red_since == clock.now()
    # then: alice and carol (华东's manager) are told; dave (华南) and bob are not
    assert notified() == ["alice", "carol"]
    assert Notification.objects.filter(kind=NOTIFICATION_KIND).first().link == f"/leads/{lead.pk}/"

    # while it stays red, no repeat: another day, another fact that does not lift it
    clock.advance(dt.timedelta(days=1))
    leads_recompute()
    touch(lead)
    lead_health_changed(lead_id=lead.pk)
    assert notified() == ["alice", "carol"]

    # it recovers ...
    healthy(lead)
    lead_health_changed(lead_id=lead.pk)
    assert LeadHealth.objects.get(lead=lead).red is False
    # ... and crosses again: a new crossing, a new notice
    clock.advance(dt.timedelta(days=30))
    leads_recompute()
    assert notified() == ["alice", "alice", "carol", "carol"]


def test_a_silent_first_scoring_records_red_without_notifying(org, now):
    lead = lead_make(owner=org.alice)
    touch(lead)
    leads_recompute(notify=False)
    assert LeadHealth.objects.get(lead=lead).red is True
    assert notified() == []
    leads_recompute()  # still red: nothing to say
    assert notified() == []


def test_closed_leads_do_not_notify(org, now):
    from salesloop.crm.models import Lead

    lead = lead_make(owner=org.alice)
    Lead.objects.filter(pk=lead.pk).update(status="lost")
    touch(lead)
    lead_health_changed(lead_id=lead.pk)
    assert LeadHealth.objects.get(lead=lead).red is True
    assert notified() == []
