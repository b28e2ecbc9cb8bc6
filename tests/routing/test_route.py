"""C8.1/C8.2: rules in priority order, strategies, eligibility, and the trace of every decision."""

from __future__ import annotations

import datetime as dt

import pytest

from salesloop.core import clock, explanations
from salesloop.crm.models import Lead
from salesloop.routing.models import Assignment, Leave, RepProfile
from salesloop.routing.selectors import assignment_explanation
from salesloop.routing.services import lead_route
from tests.factories import lead_make, user_make
from tests.routing.conftest import definition, in_force, rule

pytestmark = pytest.mark.django_db


def route(lead: Lead) -> Assignment:
    assignment = lead_route(lead=lead)
    assert assignment is not None
    return assignment


class TestRules:
    def test_the_first_matching_rule_by_priority_decides_and_the_trace_says_why(self, org):
        # given: a 华南 rule at priority 10 and a 华东 rule at priority 5, fallback to 华东
        in_force(
            org.admin,
            definition(
                rule("south", 10, when={"provinces": ["广东"]}, users=["erin"]),
                rule("east", 5, when={"regions": ["east"]}, users=["alice"]),
            ),
        )
        # when: a 广东 lead arrives
        lead = lead_make(province="44")
        assignment = route(lead)
        # then: erin got it by the south rule; the east rule was evaluated first and did not match
        lead.refresh_from_db()
        assert lead.owner_id == org.erin.pk and lead.assigned_at is not None
        assert assignment.rule_id == "south" and assignment.method == "rule"
        trace = explanations.validate(assignment_explanation(assignment))
        assert [(r["id"], r["outcome"]) for r in trace["rules"]] == [
            ("east", "not_matched"),
            ("south", "winner"),
            ("fallback", "not_reached"),
        ]
        east_check = trace["rules"][0]["conditions"][0]
        assert east_check == {"field": "region", "expected": ["east"], "actual": "south", "ok": False}
        assert trace["winner"]["username"] == "erin"

    def test_a_lead_no_rule_takes_goes_to_the_fallback(self, org):
        in_force(
            org.admin,
            definition(
                rule("south", 10, when={"provinces": ["44"]}, users=["erin"]),
                fallback={"pool": {"users": ["bob"]}, "strategy": "round_robin"},
            ),
        )
        assignment = route(lead_make(province="31"))
        assert assignment.method == "fallback" and assignment.assignee_id == org.bob.pk

    def test_without_a_rule_set_in_force_the_lead_waits_in_the_pool(self, org):
        lead = lead_make(province="31")
        assert lead_route(lead=lead) is None
        lead.refresh_from_db()
        assert lead.owner_id is None

    def test_time_and_weekday_conditions_are_read_in_the_organisations_time_zone(self, org):
        # Monday 2026-11-30 08:30 UTC is 16:30 in Shanghai: office hours. The clock is set before the
        # rule set is published, so it is in force then whatever the real date (it was published
        # at the real time, a minute back, and stopped being in force at 08:30 once that had passed).
        clock.set_now(dt.datetime(2026, 11, 30, 8, 30, tzinfo=dt.UTC))
        in_force(
            org.admin,
            definition(
                rule(
                    "office",
                    10,
                    when={"weekdays": [1, 2, 3, 4, 5], "hours": {"from": "09:00", "to": "18:00"}},
                    users=["alice"],
                ),
                fallback={"pool": {"users": ["bob"]}, "strategy": "round_robin"},
            ),
        )
        assert route(lead_make()).assignee_id == org.alice.pk
        # 11:00 UTC is 19:00 in Shanghai: after hours
        clock.set_now(dt.datetime(2026, 11, 30, 11, 0, tzinfo=dt.UTC))
        after = route(lead_make())
        assert after.assignee_id == org.bob.pk
        time_check = next(
            c for c in assignment_explanation(after)["rules"][0]["conditions"] if c["field"] == "time"
        )
        assert time_check == {"field": "time", "expected": "09:00-18:00", "actual": "19:00", "ok": False}

    def test_custom_field_and_source_conditions(self, org):
        in_force(
            org.admin,
            definition(
                rule("vip", 10, when={"fields": {"budget": ["high"]}, "sources": ["douyin"]}, users=["erin"]),
                fallback={"pool": {"users": ["bob"]}, "strategy": "round_robin"},
            ),
        )
        vip = lead_make(source="douyin")
        Lead.objects.filter(pk=vip.pk).update(custom_fields={"budget": "high"})
        assert route(vip).assignee_id == org.erin.pk
        assert route(lead_make(source="web_form")).assignee_id == org.bob.pk


class TestEligibility:
    def test_each_dropped_candidate_carries_its_reason(self, org):
        # given: four east reps — one inactive, one on leave, one at the open-lead cap, one free
        gone = user_make("rep", org.east, username="gone")
        gone.is_active = False
        gone.save()
        Leave.objects.create(
            user=org.bob,
            starts_at=clock.now() - dt.timedelta(days=1),
            ends_at=clock.now() + dt.timedelta(days=1),
        )
        full = user_make("rep", org.east, username="full")
        RepProfile.objects.create(user=full, max_open_leads=1)
        lead_make(owner=full)
        in_force(org.admin, definition(rule("east", 10, regions=["east"])))
        # when
        assignment = route(lead_make())
        # then: only alice was eligible, and the trace says why each other was not
        reasons = {
            c["user_id"]: (c["reason"], c["kept"])
            for c in assignment_explanation(assignment)["rules"][0]["candidates"]
        }
        assert reasons == {
            org.alice.pk: ("eligible", True),
            org.bob.pk: ("on_leave", False),
            gone.pk: ("inactive", False),
            full.pk: ("open_cap", False),
        }
        assert assignment.assignee_id == org.alice.pk

    def test_the_daily_cap_counts_assignments_since_local_midnight(self, org):
        in_force(
            org.admin,
            definition(
                rule("alice", 10, users=["alice"], caps={"max_new_per_day": 2}),
                fallback={"pool": {"users": ["bob"]}, "strategy": "round_robin"},
            ),
        )
        got = [route(lead_make()).assignee_id for _ in range(3)]
        assert got == [org.alice.pk, org.alice.pk, org.bob.pk]

    def test_working_hours_of_a_rep_are_respected(self, org):
        clock.set_now(dt.datetime(2026, 11, 28, 3, 0, tzinfo=dt.UTC))  # Saturday 11:00 in Shanghai
        RepProfile.objects.create(
            user=org.alice, work_days=[1, 2, 3, 4, 5], work_start=dt.time(9), work_end=dt.time(18)
        )
        in_force(org.admin, definition(rule("east", 10, users=["alice", "bob"])))
        first = route(lead_make())
        assert [route(lead_make()).assignee_id, first.assignee_id] == [org.bob.pk, org.bob.pk]
        dropped = {c["user_id"]: c["reason"] for c in assignment_explanation(first)["rules"][0]["candidates"]}
        assert dropped[org.alice.pk] == "off_hours"

    def test_when_nobody_is_eligible_anywhere_the_lead_waits_in_the_pool_with_a_trace(self, org):
        Leave.objects.create(
            user=org.alice,
            starts_at=clock.now() - dt.timedelta(hours=1),
            ends_at=clock.now() + dt.timedelta(hours=1),
        )
        in_force(org.admin, definition(fallback={"pool": {"users": ["alice"]}, "strategy": "round_robin"}))
        lead = lead_make()
        assignment = route(lead)
        assert assignment.method == "pool" and assignment.assignee_id is None
        assert assignment_explanation(assignment)["rules"][-1]["outcome"] == "no_candidate"
        lead.refresh_from_db()
        assert lead.owner_id is None


class TestStrategies:
    def test_round_robin_takes_turns_in_id_order_and_skips_nobody(self, org):
        in_force(org.admin, definition(rule("east", 10, regions=["east"])))
        got = [route(lead_make()).assignee_id for _ in range(5)]
        assert got == [org.alice.pk, org.bob.pk, org.alice.pk, org.bob.pk, org.alice.pk]

    def test_round_robin_continues_after_the_last_winner_when_someone_returns(self, org):
        in_force(org.admin, definition(rule("east", 10, regions=["east"])))
        leave = Leave.objects.create(
            user=org.alice,
            starts_at=clock.now() - dt.timedelta(hours=1),
            ends_at=clock.now() + dt.timedelta(hours=1),
        )
        assert [route(lead_make()).assignee_id for _ in range(2)] == [org.bob.pk, org.bob.pk]
        leave.delete()
        assert [route(lead_make()).assignee_id for _ in range(2)] == [org.alice.pk, org.bob.pk]

    def test_nearest_region_keeps_the_reps_of_the_leads_region(self, org):
        in_force(
            org.admin, definition(rule("near", 10, strategy="nearest_region", regions=["east", "south"]))
        )
        assert route(lead_make(province="44")).assignee_id == org.erin.pk
        east = route(lead_make(province="31"))
        assert east.assignee_id in {org.alice.pk, org.bob.pk}
        dropped = {
            c["user_id"]: c["reason"]
            for c in assignment_explanation(east)["rules"][0]["candidates"]
            if not c["kept"]
        }
        assert dropped == {org.erin.pk: "other_region"}

    def test_specialty_matches_the_customers_industry(self, org):
        RepProfile.objects.create(user=org.bob, specialties=["制造业"])
        in_force(
            org.admin,
            definition(
                rule("spec", 10, strategy="specialty", regions=["east"]),
                fallback={"pool": {"users": ["erin"]}, "strategy": "round_robin"},
            ),
        )
        assert route(lead_make(customer=None, province="31")).assignee_id == org.erin.pk  # 工业设备: nobody
        from tests.factories import customer_make

        assert route(lead_make(customer=customer_make(industry="制造业"))).assignee_id == org.bob.pk

    def test_weighted_distribution_follows_the_weights(self, org):
        in_force(
            org.admin,
            definition(
                rule("w", 10, strategy="weighted", users=["alice", "bob"], weights={"alice": 3, "bob": 1})
            ),
        )
        got = [route(lead_make()).assignee_id for _ in range(8)]
        assert got.count(org.alice.pk) == 6 and got.count(org.bob.pk) == 2

    def test_least_loaded_picks_the_rep_with_fewest_open_leads(self, org):
        for _ in range(3):
            lead_make(owner=org.alice)
        lead_make(owner=org.bob)
        in_force(org.admin, definition(rule("ll", 10, strategy="least_loaded", users=["alice", "bob"])))
        got = [route(lead_make()).assignee_id for _ in range(3)]
        assert got == [org.bob.pk, org.bob.pk, org.alice.pk] or got[:2] == [org.bob.pk, org.bob.pk]


class TestQueries:
    def test_routing_a_lead_costs_the_same_queries_whatever_the_size_of_the_pool(
        self, org, django_assert_num_queries
    ):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        in_force(
            org.admin,
            definition(
                rule("skip", 5, when={"provinces": ["44"]}, users=["erin"]),
                rule("east", 10, regions=["east"]),
            ),
        )
        route(lead_make())  # the rotation row exists from now on

        def cost() -> int:
            lead = lead_make()
            with CaptureQueriesContext(connection) as queries:
                route(lead)
            return sum(1 for q in queries.captured_queries if "SAVEPOINT" not in q["sql"])

        small = cost()
        for n in range(12):
            user_make("rep", org.east, username=f"more{n}")
        Leave.objects.create(
            user=org.bob,
            starts_at=clock.now() - dt.timedelta(hours=1),
            ends_at=clock.now() + dt.timedelta(hours=1),
        )
        assert cost() == small
        # the lead (locked), routed before?, the version in force, an A/B test?, the roster, leaves
        # (asked together on PostgreSQL), the rotation (locked), open and today's leads (one
        # statement), rotation update, assignment, owner, notice;
        # then the funnel's rows by owner follow it (C5): the lead with the owner its rows count for,
        # its moves, the two upserts; and the indicator facts (C9): which leads' rows count another
        # owner, 3 day ledgers out, 3 lead rows, 3 ledgers in — on PostgreSQL the statements nothing
        # reads back go together (core.rows.statements_run): the two upserts, each set of ledgers
        together = connection.vendor == "postgresql"
        assert small == (11 if together else 12) + (3 if together else 4) + (6 if together else 10), small


class TestRotationAcrossRegions:
    def test_a_lead_region_pool_shares_evenly_within_each_region_whatever_the_order(self, org):
        # given: one rule whose pool is the lead's own region; two reps in 华东, one in 华南
        in_force(org.admin, definition(rule("own-region", 10, pool_lead_region=True)))
        # when: leads alternate between 华东 and 华南 (each 华南 lead used to pull 华东's turn back)
        got = [route(lead_make(province=p)).assignee_id for p in ["31", "44"] * 6]
        # then: 华东's six leads went three to alice and three to bob, in turns
        east = got[::2]
        assert east == [org.alice.pk, org.bob.pk] * 3
        assert set(got[1::2]) == {org.erin.pk}


def test_traces_are_kept_as_json_text_on_postgresql_and_read_back_whole(org):
    """A trace is written in bulk and read whole, never searched inside: PostgreSQL keeps it as
    `json` (its text, checked) instead of parsing it into `jsonb` (routing/migrations/0004). It
    reads back as the same value, stored one at a time or in bulk."""
    from django.db import connection

    from salesloop.routing.services import leads_route_bulk

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT data_type FROM information_schema.columns"
                " WHERE table_name = 'routing_assignment' AND column_name = 'explanation'"
            )
            assert cursor.fetchone()[0] == "json"
    in_force(org.director, definition(rule("east", 10, when={"regions": ["east"]}, regions=["east"])))
    one = lead_route(lead=lead_make(province="31"))
    assert one is not None
    bulk = [lead_make(province="31") for _ in range(3)]
    leads_route_bulk(lead_ids=[lead.pk for lead in bulk])
    for assignment in Assignment.objects.order_by("id"):
        assert isinstance(assignment.explanation, dict)
        assert Assignment.objects.get(pk=assignment.pk).explanation == assignment.explanation
        trace = assignment_explanation(assignment)
        assert trace["kind"] == "assignment" and trace["winner"]["user_id"] == assignment.assignee_id
    assert Assignment.objects.count() == 4


def test_traces_are_compressed_with_lz4_on_postgresql(org):
    """Every rule-made trace crosses PostgreSQL's 2 KB threshold and is compressed as it is stored:
    with lz4, not the default pglz (half the server time per row; routing/migrations/0003)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's TOAST compression; SQLite stores the text as it is")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attcompression FROM pg_attribute"
            " WHERE attrelid = 'routing_assignment'::regclass AND attname = 'explanation'"
        )
        assert cursor.fetchone()[0] == "l"
    # and a trace stored now is compressed with it
    in_force(org.director, definition(rule("east", 10, when={"regions": ["east"]}, regions=["east"])))
    lead = lead_make(province="31")
    assignment = lead_route(lead=lead)
    assert assignment is not None
    # (a fallback over many reps makes a trace this long: the rules repeated here stand in for one)
    long_trace = {**assignment.explanation, "rules": assignment.explanation["rules"] * 30}
    Assignment.objects.filter(pk=assignment.pk).update(explanation=long_trace)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_compression(explanation) FROM routing_assignment WHERE id = %s",
            [assignment.pk],
        )
        assert cursor.fetchone()[0] == "lz4"
