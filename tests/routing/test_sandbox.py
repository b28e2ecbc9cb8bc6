"""C8.4: the sandbox — replaying past leads through a candidate and the version in force, the
simulation report and its progress, the publication gate, and live A/B tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from salesloop.core import clock
from salesloop.core.models import AuditEntry
from salesloop.crm.models import Lead, LeadStatus
from salesloop.routing import services
from salesloop.routing.fairness import gini
from salesloop.routing.models import Assignment, RoundRobinState, RuleSet, RuleSetStatus
from salesloop.routing.sandbox import ab_report_refresh, ab_test_start, ab_test_stop, replay, simulate_start
from tests.factories import lead_make
from tests.routing.conftest import definition, in_force, rule

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)


def by_region() -> dict:
    return definition(rule("by-region", 10, lead_region=True))


def all_to(username: str, **caps) -> dict:
    extra = {"caps": caps} if caps else {}
    return definition(
        rule("one-rep", 10, users=[username], **extra),
        fallback={"pool": {"users": ["bob"]}, "strategy": "round_robin"},
    )


def past_lead(province: str = "31", hours_ago: float = 1, **extra) -> Lead:
    return lead_make(province=province, created_at=NOW - dt.timedelta(hours=hours_ago), **extra)


def close(lead: Lead, at: dt.datetime, status: str = LeadStatus.WON) -> None:
    Lead.objects.filter(pk=lead.pk).update(status=status, closed_at=at)


def reps_of(side: dict) -> dict[int, dict]:
    return {r["user_id"]: r for r in side["reps"]}


@pytest.fixture
def now():
    clock.set_now(NOW)
    return NOW


class TestReplay:
    def test_both_versions_replay_the_window_and_are_compared(self, org, now):
        # given: a region round-robin in force and a candidate giving everything to alice
        current = in_force(org.admin, by_region())
        candidate = services.ruleset_create(actor=org.director, definition=all_to("alice"))
        for province, hours_ago in [("31", 50), ("44", 40), ("32", 30), ("44", 20)]:
            past_lead(province, hours_ago)
        past_lead("44", hours_ago=24 * 91)  # before the default 90-day window
        # when
        result = replay(candidate=candidate)
        # then: the same four leads on both sides
        metrics = result.metrics
        assert metrics["window"]["leads"] == 4 == result.leads
        assert metrics["baseline"] == {"id": current.pk, "version": current.version, "name": current.name}
        assert dt.datetime.fromisoformat(metrics["window"]["end"]) == now
        assert dt.datetime.fromisoformat(metrics["window"]["start"]) == now - dt.timedelta(days=90)
        old, new = metrics["current"], metrics["candidate"]
        assert old["leads"] == new["leads"] == 4
        # the region round-robin matched every lead; the candidate only the two east ones
        assert old["region_match_rate"] == 1.0 and new["region_match_rate"] == 0.5
        assert reps_of(new)[org.alice.pk]["leads"] == 4
        assert reps_of(old)[org.erin.pk]["leads"] == 2
        # gini over the reps in either version's pools (alice, bob, erin)
        assert new["gini"] == round(gini([4, 0, 0]), 4)
        assert result.region_match_drop == 0.5 and result.worse
        assert result.findings[0]["code"] == "region_match_down" and result.findings[0]["severity"] == "block"

    def test_a_replay_touches_no_lead_and_writes_nothing(self, org, now):
        in_force(org.admin, by_region())
        candidate = services.ruleset_create(actor=org.director, definition=all_to("alice"))
        past_lead("31", 10, owner=org.bob)
        past_lead("44", 9)
        closed = past_lead("44", 8, owner=org.erin)
        close(closed, NOW - dt.timedelta(hours=7))
        fields = ("id", "owner_id", "assigned_at", "updated_at", "status", "closed_at", "stage_id")
        before = list(Lead.objects.order_by("id").values_list(*fields))
        audits = AuditEntry.objects.count()
        with CaptureQueriesContext(connection) as queries:
            result = replay(candidate=candidate)
        assert result.leads == 3
        assert list(Lead.objects.order_by("id").values_list(*fields)) == before
        assert Assignment.objects.count() == 0 and RoundRobinState.objects.count() == 0
        assert AuditEntry.objects.count() == audits
        writes = [
            q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        ]
        assert writes == []

    def test_the_number_of_queries_does_not_grow_with_the_leads(self, org, now):
        in_force(org.admin, by_region())
        candidate = services.ruleset_create(
            actor=org.director, definition=all_to("alice", max_open_leads=5)
        )  # a cap: the open loads at the window's start are read too
        for i in range(3):
            past_lead("31", 10 + i)
        with CaptureQueriesContext(connection) as few:
            replay(candidate=candidate)
        for i in range(12):
            past_lead("44", 20 + i, owner=org.erin if i % 2 else None)
        with CaptureQueriesContext(connection) as many:
            result = replay(candidate=candidate)
        assert result.leads == 15
        assert len(many) == len(few)

    def test_progress_is_reported_batch_by_batch(self, org, now):
        in_force(org.admin, by_region())
        candidate = services.ruleset_create(actor=org.director, definition=all_to("alice"))
        for i in range(5):
            past_lead("31", 10 + i)
        calls: list[tuple[int, int]] = []
        replay(candidate=candidate, on_progress=lambda done, total: calls.append((done, total)), batch=2)
        assert calls == [(0, 5), (2, 5), (4, 5), (5, 5)]

    def test_without_a_version_in_force_the_leads_owners_are_the_current_side(self, org, now):
        # given: no routing yet — people handed the leads out by hand
        candidate = services.ruleset_create(actor=org.director, definition=all_to("alice"))
        past_lead("31", 10, owner=org.bob)
        past_lead("44", 9, owner=org.erin)
        past_lead("44", 8, owner=org.carol)  # a manager of another region kept one
        past_lead("44", 7)  # nobody yet
        # when
        result = replay(candidate=candidate)
        # then
        owners, proposed = result.metrics["current"], result.metrics["candidate"]
        assert result.metrics["baseline"] is None
        assert (owners["assigned"], owners["unassigned"]) == (3, 1)
        assert {r["user_id"]: r["leads"] for r in owners["reps"] if r["leads"]} == {
            org.bob.pk: 1,
            org.erin.pk: 1,
            org.carol.pk: 1,
        }
        assert reps_of(owners)[org.carol.pk]["name"] == str(org.carol)
        assert owners["region_match_rate"] == round(2 / 3, 4)  # carol is in 华东, the lead in 广东
        assert proposed["assigned"] == 4 and reps_of(proposed)[org.alice.pk]["leads"] == 4

    def test_open_lead_caps_see_leads_close_as_time_passes(self, org, now):
        # given: alice takes one open lead at a time; bob takes the overflow
        in_force(org.admin, by_region())
        candidate = services.ruleset_create(actor=org.director, definition=all_to("alice", max_open_leads=1))
        first = past_lead("31", 10)
        close(first, NOW - dt.timedelta(hours=9))  # won an hour after it came in
        past_lead("32", 8)  # stays open
        past_lead("33", 7)
        # when
        proposed = replay(candidate=candidate).metrics["candidate"]
        # then: the first lead had closed when the second came, so alice took both; the third
        # found her at her cap
        assert proposed["province_shares"][str(org.alice.pk)] == {"31": 0.5, "32": 0.5}
        assert proposed["province_shares"][str(org.bob.pk)] == {"33": 1.0}

    def test_loads_start_at_the_open_leads_of_the_windows_start(self, org, now):
        in_force(org.admin, by_region())
        candidate = services.ruleset_create(actor=org.director, definition=all_to("alice", max_open_leads=1))
        # alice still had an old lead open when the window began; it closed 5 hours ago
        old = lead_make(owner=org.alice, created_at=NOW - dt.timedelta(days=100))
        close(old, NOW - dt.timedelta(hours=5), status=LeadStatus.LOST)
        long_closed = lead_make(owner=org.alice, created_at=NOW - dt.timedelta(days=120))
        close(long_closed, NOW - dt.timedelta(days=95))  # closed before the window: no load
        past_lead("32", 6)
        past_lead("33", 4)
        past_lead("31", 3)
        proposed = replay(candidate=candidate).metrics["candidate"]
        # 江苏 came while alice was at her cap; 浙江 after her old lead closed; 上海 found her full
        assert proposed["province_shares"][str(org.alice.pk)] == {"33": 1.0}
        assert proposed["province_shares"][str(org.bob.pk)] == {"31": 0.5, "32": 0.5}

    def test_historical_conversion_rates_come_from_leads_closed_before_the_window(self, org, now):
        in_force(org.admin, by_region())
        candidate = services.ruleset_create(actor=org.director, definition=all_to("alice"))
        history = NOW - dt.timedelta(days=200)
        # alice won 3 of 4, bob 1 of 4, erin 1 of 2 before the window
        for owner, won, lost in [(org.alice, 3, 1), (org.bob, 1, 3), (org.erin, 1, 1)]:
            for status, n in [(LeadStatus.WON, won), (LeadStatus.LOST, lost)]:
                for _ in range(n):
                    old = lead_make(owner=owner, created_at=history)
                    close(old, history + dt.timedelta(days=1), status=status)
        for i in range(4):
            past_lead("31", 10 + i)
        result = replay(candidate=candidate)
        rates = {org.alice.pk: 0.75, org.bob.pk: 0.25, org.erin.pk: 0.5}
        mean = sum(rates.values()) / 3
        # every replayed lead goes to alice under the candidate
        assert result.metrics["candidate"]["conversion_deviation"] == round(abs(0.75 - mean), 4)
        # the round-robin splits the east leads between alice and bob
        current = result.metrics["current"]
        split = {u: r["leads"] for u, r in reps_of(current).items() if r["leads"]}
        expected = sum(n * abs(rates[u] - mean) for u, n in split.items()) / sum(split.values())
        assert current["conversion_deviation"] == round(expected, 4)


class TestSimulate:
    def test_the_report_is_filled_in_by_the_background_task(self, org, now):
        current = in_force(org.admin, by_region())
        candidate = services.ruleset_create(actor=org.director, definition=all_to("alice"))
        past_lead("31", 24 * 10)
        past_lead("44", 24 * 40)  # outside a 30-day window
        report = simulate_start(actor=org.director, ruleset=candidate, days=30)
        assert report.status == "done", report.error
        assert report.kind == "replay" and report.baseline_id == current.pk
        assert (report.window_start, report.window_end) == (now - dt.timedelta(days=30), now)
        assert report.leads_total == report.leads_done == 1
        assert set(report.metrics) == {"current", "candidate", "window", "baseline"}
        assert report.finished_at == now and report.created_by_id == org.director.pk
        assert report.region_match_drop == 1.0 - report.metrics["candidate"]["region_match_rate"]
        assert AuditEntry.objects.filter(action="routing.replay.start", target_id=str(report.pk)).exists()

    def test_a_failing_replay_ends_as_failed_with_a_readable_error(self, org, now):
        candidate = services.ruleset_create(actor=org.director, definition=all_to("alice"))
        RuleSet.objects.filter(pk=candidate.pk).update(definition={"name": "broken"})
        candidate.refresh_from_db()
        report = simulate_start(actor=org.director, ruleset=candidate)
        assert report.status == "failed" and report.finished_at == now
        assert "fallback" in report.error
        assert services.latest_replay(candidate) is None

    def test_only_directors_and_admins_simulate(self, org, now):
        candidate = services.ruleset_create(actor=org.director, definition=all_to("alice"))
        for person in (org.carol, org.alice, org.pm):
            with pytest.raises(PermissionDenied):
                simulate_start(actor=person, ruleset=candidate)
        assert simulate_start(actor=org.admin, ruleset=candidate).status == "done"

    @pytest.mark.parametrize(
        "window, field",
        [
            ({"days": 0}, "days"),
            ({"days": 10, "window_start": NOW - dt.timedelta(days=3)}, "days"),
            (
                {"window_start": NOW - dt.timedelta(days=1), "window_end": NOW - dt.timedelta(days=2)},
                "window_start",
            ),
            ({"window_start": NOW + dt.timedelta(days=1)}, "window_start"),
        ],
    )
    def test_a_bad_window_is_refused_by_field(self, org, now, window, field):
        candidate = services.ruleset_create(actor=org.director, definition=all_to("alice"))
        with pytest.raises(ValidationError) as refused:
            simulate_start(actor=org.director, ruleset=candidate, **window)
        assert field in refused.value.error_dict

    def test_a_window_ending_in_the_future_ends_now(self, org, now):
        candidate = services.ruleset_create(actor=org.director, definition=all_to("alice"))
        report = simulate_start(
            actor=org.director, ruleset=candidate, days=7, window_end=NOW + dt.timedelta(days=3)
        )
        assert (report.window_start, report.window_end) == (now - dt.timedelta(days=7), now)


class TestPublishGate:
    def test_a_version_worse_on_region_matching_needs_an_override(self, org, now):
        in_force(org.admin, by_region())
        candidate = services.ruleset_create(actor=org.director, definition=all_to("alice"))
        past_lead("31", 10)
        past_lead("44", 9)
        report = simulate_start(actor=org.director, ruleset=candidate)
        assert report.worse
        with pytest.raises(ValidationError) as refused:
            services.ruleset_publish(actor=org.director, ruleset=candidate)
        assert "override_reason" in refused.value.error_dict
        published = services.ruleset_publish(
            actor=org.director, ruleset=candidate, override_reason="华南暂时没有销售"
        )
        assert published.status == RuleSetStatus.PUBLISHED
        assert published.override_reason == "华南暂时没有销售" and published.report_id == report.pk

    def test_a_version_no_worse_publishes_without_an_override(self, org, now):
        in_force(org.admin, by_region())
        same = services.ruleset_create(actor=org.director, definition=by_region())
        past_lead("31", 10)
        past_lead("44", 9)
        report = simulate_start(actor=org.director, ruleset=same)
        assert not report.worse and report.findings == []
        assert services.ruleset_publish(actor=org.director, ruleset=same).status == RuleSetStatus.PUBLISHED


class TestAbTest:
    @pytest.fixture
    def running(self, org, now):
        current = in_force(org.admin, by_region())
        candidate = services.ruleset_create(actor=org.director, definition=all_to("erin"))
        report = ab_test_start(actor=org.director, ruleset=candidate, share=0.3, days=7)
        return current, candidate, report

    def test_a_share_of_new_leads_follows_the_candidate_and_the_arm_is_recorded(self, org, running):
        current, candidate, report = running
        assert (report.kind, report.status, report.share) == ("ab", "running", Decimal("0.300"))
        assert report.window_end - report.window_start == dt.timedelta(days=7)
        assignments = [services.lead_route(lead=lead_make(province="31")) for _ in range(60)]
        in_candidate = [a for a in assignments if a.arm == "candidate"]
        # the split is the stable hash of the lead's id; about 30% of leads fall in the candidate's arm
        assert all(a.arm == services.ab_arm(a.lead_id, Decimal("0.300")) for a in assignments)
        assert 0.1 < len(in_candidate) / len(assignments) < 0.5
        assert all(a.ruleset_id == candidate.pk and a.assignee_id == org.erin.pk for a in in_candidate)
        others = [a for a in assignments if a.arm == "current"]
        assert len(others) + len(in_candidate) == 60
        assert all(a.ruleset_id == current.pk and a.assignee_id in {org.alice.pk, org.bob.pk} for a in others)

    def test_the_report_measures_each_arm_from_its_assignments(self, org, running):
        _, _, report = running
        assignments = [services.lead_route(lead=lead_make(province="31")) for _ in range(40)]
        n_candidate = sum(1 for a in assignments if a.arm == "candidate")
        clock.advance(dt.timedelta(hours=1))
        report = ab_report_refresh(report)
        current, candidate = report.metrics["current"], report.metrics["candidate"]
        assert (current["leads"], candidate["leads"]) == (40 - n_candidate, n_candidate)
        assert report.leads_done == 40 == report.metrics["window"]["leads"]
        # east leads: the current arm keeps them in the region, the candidate sends them to erin
        assert current["region_match_rate"] == 1.0 and candidate["region_match_rate"] == 0.0
        assert report.worse and report.findings[0]["code"] == "region_match_down"
        assert report.status == "running"

    def test_a_hand_reassignment_during_the_test_is_not_an_arm(self, org, running):
        _, _, report = running
        lead = lead_make(province="31")
        services.lead_route(lead=lead)
        services.lead_reassign(actor=org.carol, lead=lead, owner=org.bob, reason="客户点名要 bob")
        report = ab_report_refresh(report)
        assert report.metrics["window"]["leads"] == 1

    def test_stopping_the_test_sends_every_new_lead_by_the_version_in_force(self, org, running):
        _, _, report = running
        clock.advance(dt.timedelta(days=2))
        stopped = ab_test_stop(actor=org.director, report=report)
        assert stopped.status == "done" and stopped.stopped_at == clock.now() == stopped.finished_at
        assert services.ab_test_running(clock.now()) is None
        after = [services.lead_route(lead=lead_make(province="44")) for _ in range(10)]
        assert {a.arm for a in after} == {""} and {a.assignee_id for a in after} == {org.erin.pk}
        actions = set(AuditEntry.objects.filter(target_id=str(report.pk)).values_list("action", flat=True))
        assert {"routing.ab_test.start", "routing.ab_test.stop"} <= actions
        with pytest.raises(ValidationError) as again:
            ab_test_stop(actor=org.director, report=stopped)
        assert "status" in again.value.error_dict

    def test_one_test_at_a_time(self, org, running):
        _, _, report = running
        other = services.ruleset_create(actor=org.director, definition=all_to("bob"))
        with pytest.raises(ValidationError) as refused:
            ab_test_start(actor=org.director, ruleset=other)
        assert "ab_test" in refused.value.error_dict
        # once the first test has run its course, another may start, and the first is finished
        clock.advance(dt.timedelta(days=8))
        second = ab_test_start(actor=org.director, ruleset=other)
        report.refresh_from_db()
        assert report.status == "done" and report.finished_at == report.window_end
        assert second.share == services.policy_get().ab_share
        assert second.window_end - second.window_start == dt.timedelta(days=14)

    def test_the_candidate_is_a_draft_or_not_yet_in_effect(self, org, now):
        current = in_force(org.admin, by_region())
        with pytest.raises(ValidationError) as refused:
            ab_test_start(actor=org.director, ruleset=current)
        assert "ruleset" in refused.value.error_dict
        scheduled = services.ruleset_create(actor=org.director, definition=all_to("bob"))
        RuleSet.objects.filter(pk=scheduled.pk).update(
            status=RuleSetStatus.PUBLISHED, effective_at=NOW + dt.timedelta(days=2)
        )
        assert ab_test_start(actor=org.director, ruleset=scheduled).status == "running"

    def test_only_directors_and_admins_run_tests(self, org, now):
        in_force(org.admin, by_region())
        candidate = services.ruleset_create(actor=org.director, definition=all_to("erin"))
        with pytest.raises(PermissionDenied):
            ab_test_start(actor=org.carol, ruleset=candidate)
        report = ab_test_start(actor=org.admin, ruleset=candidate, ends_at=NOW + dt.timedelta(days=1))
        assert report.window_end == NOW + dt.timedelta(days=1)
        with pytest.raises(PermissionDenied):
            ab_test_stop(actor=org.carol, report=report)

    @pytest.mark.parametrize(
        "params, field",
        [
            ({"share": 0}, "share"),
            ({"share": "1.5"}, "share"),
            ({"share": "abc"}, "share"),
            ({"days": 0}, "days"),
            ({"days": 3, "ends_at": NOW + dt.timedelta(days=1)}, "days"),
            ({"ends_at": NOW - dt.timedelta(hours=1)}, "ends_at"),
        ],
    )
    def test_bad_parameters_are_refused_by_field(self, org, now, params, field):
        in_force(org.admin, by_region())
        candidate = services.ruleset_create(actor=org.director, definition=all_to("erin"))
        with pytest.raises(ValidationError) as refused:
            ab_test_start(actor=org.director, ruleset=candidate, **params)
        assert field in refused.value.error_dict

    def test_bulk_routing_splits_by_the_same_arms(self, org, running):
        leads = [lead_make(province="31") for _ in range(30)]
        services.leads_route_bulk(lead_ids=[lead.pk for lead in leads])
        arms = dict(Assignment.objects.values_list("lead_id", "arm"))
        assert arms == {lead.pk: services.ab_arm(lead.pk, Decimal("0.300")) for lead in leads}
        assert set(Assignment.objects.filter(arm="candidate").values_list("assignee_id", flat=True)) <= {
            org.erin.pk
        }
