"""The score from the facts (SPEC C3.1–2): worked by hand, decay, determinism, bulk == single."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import connection

from salesloop.core import clock, explanations
from salesloop.crm.models import Customer, Lead
from salesloop.health import recompute
from salesloop.health.models import LeadHealth
from salesloop.health.services import config_in_force, lead_health_changed, lead_recompute, leads_recompute
from tests.factories import lead_make
from tests.health.conftest import budget, healthy, meeting, touch, view

pytestmark = pytest.mark.django_db


def contributions(lead: Lead) -> dict[str, float]:
    health = LeadHealth.objects.get(lead=lead)
    return {s["signal"]: s["contribution"] for s in health.breakdown["signals"]}


class TestWorkedByHand:
    def test_every_signal_at_age_zero(self, org, now):
        # given: today, 4 outbound calls (2 answered, 2 not) and 1 call the customer started,
        # 300 s of reading, 1 meeting attended in full, budget confirmed
        lead = lead_make(owner=org.alice)
        for responded in (True, True, False, False):
            touch(lead, responded=responded)
        touch(lead, direction="inbound", initiated=True)
        view(lead, seconds=300)
        meeting(lead)
        budget(lead, "range_known", days_ago=3)
        budget(lead, "confirmed")
        # when
        lead_health_changed(lead_id=lead.pk)
        # then: frequency 5/8·20 = 12.5; reading 300/600·15 = 7.5; attendance 1/max(1, 2)·20 = 10;
        # budget 0.67·20 = 13.4; answers 2/max(4, 4)·15 = 7.5; initiated 1/3·10 = 3.33 → 54.23 → 54
        assert contributions(lead) == {
            "contact_frequency": 12.5,
            "material_viewing": 7.5,
            "meeting_attendance": 10.0,
            "budget_progress": 13.4,
            "response_rate": 7.5,
            "customer_initiated": 3.33,
        }
        lead.refresh_from_db()
        assert lead.health_score == 54
        assert Customer.objects.get(pk=lead.customer_id).health_score == 54

    def test_a_fact_one_half_life_old_counts_half(self, org, now):
        lead = lead_make(owner=org.alice)
        touch(lead, days_ago=14)  # the default half-life
        lead_health_changed(lead_id=lead.pk)
        health = LeadHealth.objects.get(lead=lead)
        frequency = health.breakdown["signals"][0]
        assert frequency["signal"] == "contact_frequency"
        assert frequency["raw"] == 0.5
        assert frequency["contribution"] == 1.25  # 0.5 / 8 · 20
        assert health.score == 1

    def test_partial_attendance_and_no_shows(self, org, now):
        lead = lead_make(owner=org.alice)
        meeting(lead, minutes=30, planned=60)  # half attended
        meeting(lead, status="no_show")
        meeting(lead, status="scheduled")  # not held yet: does not count
        lead_health_changed(lead_id=lead.pk)
        # (0.5 + 0) / max(2, 2) · 20 = 5
        assert contributions(lead)["meeting_attendance"] == 5.0
        assert LeadHealth.objects.get(lead=lead).score == 5

    def test_facts_outside_their_window_do_not_count(self, org, now):
        lead = lead_make(owner=org.alice)
        touch(lead, days_ago=31)  # contact frequency looks back 30 days
        touch(lead, days_ago=1, direction="inbound", initiated=True)
        lead_health_changed(lead_id=lead.pk)
        health = LeadHealth.objects.get(lead=lead)
        frequency = health.breakdown["signals"][0]
        assert frequency["inputs"] == {"touches": 2}
        assert frequency["raw"] == pytest.approx(0.5 ** (1 / 14), abs=1e-4)

    def test_a_lead_without_facts_is_unknown_not_zero(self, org, now):
        lead = lead_make(owner=org.alice)
        lead_health_changed(lead_id=lead.pk)
        lead.refresh_from_db()
        assert lead.health_score is None
        assert not LeadHealth.objects.filter(lead=lead).exists()

    def test_the_customer_has_the_best_of_its_open_leads(self, org, now):
        first = lead_make(owner=org.alice)
        second = lead_make(owner=org.alice, customer=first.customer)
        touch(first)
        healthy(second)
        lead_health_changed(lead_id=first.pk)
        lead_health_changed(lead_id=second.pk)
        assert Customer.objects.get(pk=first.customer_id).health_score == 60

    def test_the_customer_follows_its_best_lead_down_and_ignores_closed_ones(self, org, now):
        # given: a customer whose best open lead (60) is scored, and a weaker one
        weak = lead_make(owner=org.alice)
        best = lead_make(owner=org.alice, customer=weak.customer)
        touch(weak)
        healthy(best)
        lead_health_changed(lead_id=weak.pk)
        lead_health_changed(lead_id=best.pk)
        weak_score = Lead.objects.get(pk=weak.pk).health_score
        assert Customer.objects.get(pk=weak.customer_id).health_score == 60 > weak_score

        # when: the best lead is lost, then the weak one is recomputed on a new fact
        Lead.objects.filter(pk=best.pk).update(status="lost")
        touch(weak, responded=True)
        lead_health_changed(lead_id=weak.pk)

        # then: the customer has the open lead's new score, not the lost lead's
        weak.refresh_from_db()
        assert weak.health_score != weak_score
        assert Customer.objects.get(pk=weak.customer_id).health_score == weak.health_score

    def test_a_new_best_score_raises_the_customer_and_decay_lowers_it(self, org, now):
        lead = lead_make(owner=org.alice)
        other = lead_make(owner=org.alice, customer=lead.customer)
        touch(other, days_ago=30)
        lead_health_changed(lead_id=other.pk)
        healthy(lead)
        lead_health_changed(lead_id=lead.pk)
        assert Customer.objects.get(pk=lead.customer_id).health_score == 60

        later = now + dt.timedelta(days=60)
        lead_recompute(lead_id=lead.pk, now=later)

        decayed = Lead.objects.get(pk=lead.pk).health_score
        expected = max(decayed, Lead.objects.get(pk=other.pk).health_score)
        assert decayed < 60
        assert Customer.objects.get(pk=lead.customer_id).health_score == expected


class TestBreakdown:
    def test_contributions_add_up_to_the_score_and_match_the_schema(self, org, now):
        lead = lead_make(owner=org.alice)
        for days in (0, 2, 5, 9):
            touch(lead, days_ago=days, responded=days % 2 == 0)
        view(lead, seconds=123, days_ago=4)
        meeting(lead, minutes=45, days_ago=20)
        budget(lead, "approved", days_ago=40)
        lead_health_changed(lead_id=lead.pk)
        health = LeadHealth.objects.get(lead=lead)
        total = sum(s["contribution"] for s in health.breakdown["signals"])
        assert abs(total - health.score) <= 0.5
        assert health.breakdown["score"] == health.score
        assert sum(s["weight"] for s in health.breakdown["signals"]) == 100
        # the stored breakdown is a valid `health_score` explanation
        assert explanations.validate(health.breakdown)["signals"] == health.breakdown["signals"]


class TestDeterminismAndDecay:
    def test_recomputing_at_the_same_moment_gives_the_same_score_and_breakdown(self, org, now):
        lead = lead_make(owner=org.alice)
        touch(lead, days_ago=3, responded=True)
        view(lead, seconds=200, days_ago=6)
        meeting(lead, days_ago=12)
        lead_recompute(lead_id=lead.pk)
        first = LeadHealth.objects.get(lead=lead)
        LeadHealth.objects.all().delete()
        Lead.objects.filter(pk=lead.pk).update(health_score=None)
        lead_recompute(lead_id=lead.pk, now=now)
        again = LeadHealth.objects.get(lead=lead)
        assert (again.score, again.breakdown) == (first.score, first.breakdown)

    def test_an_idle_lead_decays_day_by_day(self, org, now):
        lead = lead_make(owner=org.alice)
        healthy(lead)
        lead_recompute(lead_id=lead.pk)
        scores = [LeadHealth.objects.get(lead=lead).score]
        for _ in range(3):
            clock.advance(dt.timedelta(days=7))
            leads_recompute(notify=False)  # the daily run
            scores.append(LeadHealth.objects.get(lead=lead).score)
        assert scores[0] == 60
        assert scores == sorted(scores, reverse=True) and scores[-1] < scores[0]


def _build_mixed_leads(org) -> list[Lead]:
    leads = []
    for i in range(7):
        lead = lead_make(owner=org.alice if i % 2 else org.bob)
        for j in range(i):
            touch(lead, days_ago=j * 3 + 0.25, responded=[None, True, False][j % 3], direction="outbound")
        if i % 3 == 0:
            touch(lead, direction="inbound", initiated=True, days_ago=i)
        if i % 2 == 0:
            view(lead, seconds=40 * i + 7, days_ago=i * 1.5)
        if i > 3:
            meeting(lead, minutes=20 + i, days_ago=i)
            meeting(lead, status="no_show", days_ago=i + 10)
        if i in (2, 5):
            budget(lead, ["range_known", "approved"][i == 5], days_ago=i * 10)
        leads.append(lead)
    leads.append(lead_make(owner=org.alice))  # no fact
    return leads


class TestBulk:
    @pytest.mark.parametrize("small_batch", [50, 0], ids=["statements", "bulk-writes"])
    def test_bulk_gives_what_one_by_one_gives(self, org, now, monkeypatch, small_batch):
        leads = _build_mixed_leads(org)
        for lead in leads:
            lead_recompute(lead_id=lead.pk, now=now)
        one_by_one = {h.lead_id: (h.score, h.red, h.breakdown) for h in LeadHealth.objects.all()}
        projections = dict(Lead.objects.values_list("id", "health_score"))
        customers = dict(Customer.objects.values_list("id", "health_score"))
        assert any(score is not None for score in customers.values())
        LeadHealth.objects.all().delete()
        Lead.objects.update(health_score=None)
        Customer.objects.update(health_score=None)
        monkeypatch.setattr(recompute, "SMALL_BATCH", small_batch)

        outcome = recompute.recompute_all(now=now, config=config_in_force(now), open_only=False, chunk=3)

        bulk = {h.lead_id: (h.score, h.red, h.breakdown) for h in LeadHealth.objects.all()}
        assert bulk == one_by_one
        assert len(bulk) == 7 and outcome.scored == 7
        assert dict(Lead.objects.values_list("id", "health_score")) == projections
        assert dict(Customer.objects.values_list("id", "health_score")) == customers

    # serialized_rollback: the flush after a transactional test would otherwise wipe the reference
    # data (provinces, the default pipeline) that migrations load.
    @pytest.mark.django_db(transaction=True, serialized_rollback=True)
    def test_two_workers_give_what_one_by_one_gives(self, org, now):
        """PostgreSQL recomputes two chunks at once on two connections; SQLite has one writer."""
        if connection.vendor != "postgresql":
            pytest.skip("two workers run on PostgreSQL only (SQLite has one writer)")
        leads = _build_mixed_leads(org)
        # leads of one customer in different chunks: its score is the best over both
        shared = lead_make(owner=org.alice, customer=leads[0].customer)
        healthy(shared)
        for lead in [*leads, shared]:
            lead_recompute(lead_id=lead.pk, now=now)
        one_by_one = {h.lead_id: (h.score, h.red, h.breakdown) for h in LeadHealth.objects.all()}
        projections = dict(Lead.objects.values_list("id", "health_score"))
        customers = dict(Customer.objects.values_list("id", "health_score"))
        LeadHealth.objects.all().delete()
        Lead.objects.update(health_score=None)
        Customer.objects.update(health_score=None)
        progress: list[tuple[int, int]] = []

        outcome = recompute.recompute_all(
            now=now,
            config=config_in_force(now),
            open_only=False,
            chunk=2,
            workers=2,
            progress=lambda done, total: progress.append((done, total)),
        )

        assert {h.lead_id: (h.score, h.red, h.breakdown) for h in LeadHealth.objects.all()} == one_by_one
        assert outcome.scored == len(one_by_one) == 8
        assert dict(Lead.objects.values_list("id", "health_score")) == projections
        assert dict(Customer.objects.values_list("id", "health_score")) == customers
        assert progress[-1][0] == progress[-1][1] and len(progress) == len({p[0] for p in progress})

    def test_the_command_recomputes_every_lead(self, org, now):
        leads = _build_mixed_leads(org)
        call_command("health_recompute", "--all", "--silent")
        assert LeadHealth.objects.count() == 7
        assert Lead.objects.get(pk=leads[-1].pk).health_score is None

    def test_the_daily_task_recomputes_open_leads(self, org, now):
        from salesloop.health.tasks import health_recompute_daily

        lead = lead_make(owner=org.alice)
        touch(lead)
        result = health_recompute_daily.call()
        assert result["scored"] >= 1
        assert LeadHealth.objects.filter(lead=lead).exists()


def test_the_command_recomputes_one_lead(org, now, capsys):
    lead = lead_make(owner=org.alice)
    touch(lead)
    call_command("health_recompute", "--lead", str(lead.pk))
    assert LeadHealth.objects.get(lead=lead).score == 3
    assert "1 scored" in capsys.readouterr().out
