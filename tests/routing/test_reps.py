"""C8.5: rep routing profiles, leave and specialty tags — the services (scope, validation, audit),
the specialty review (suggestions and flags with their numbers, in a fixed number of queries), the
REST API, and the engine reading what the services wrote."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import translation

from salesloop.core import clock
from salesloop.core.models import AuditEntry
from salesloop.crm.models import Lead
from salesloop.pipeline.models import Stage
from salesloop.pipeline.services import lead_move_stage
from salesloop.routing import reps
from salesloop.routing.models import Leave, RepProfile
from salesloop.routing.selectors import assignment_explanation
from salesloop.routing.services import lead_route
from tests.factories import customer_make, lead_make, lead_ready_for, user_make
from tests.routing.conftest import definition, in_force, rule

pytestmark = pytest.mark.django_db

MED, EQUIP, EDU = "医疗器械", "工业设备", "教育培训"


def record(
    owner, industry: str, *, won: int = 0, lost: int = 0, open_: int = 0, province: str = "31"
) -> None:
    """`owner`'s leads of one industry: some won, some lost (closed now), some still open."""
    for n in range(won + lost + open_):
        lead = lead_make(owner=owner, customer=customer_make(province=province, industry=industry))
        if n < won:
            last = Stage.objects.filter(pipeline_id=lead.pipeline_id).order_by("-position").first()
            lead_ready_for(lead, last.code)  # a win needs what every stage's gate asks (SPEC C2.2)
            lead_move_stage(actor=owner, lead=lead, to_stage=last, status="won")
        elif n < won + lost:
            lead_move_stage(actor=owner, lead=lead, status="lost", reason="预算取消")


def review_of(actor, username: str) -> reps.RepReview:
    return next(r for r in reps.specialty_review(actor=actor).reps if r.username == username)


@pytest.fixture
def east_record(org):
    """华东: alice wins 医疗器械 (6 of 8), bob wins 工业设备 (6 of 8); each does worse in the other."""
    record(org.alice, MED, won=6, lost=2)
    record(org.alice, EQUIP, won=2, lost=6)
    record(org.bob, MED, won=1, lost=3)
    record(org.bob, EQUIP, won=6, lost=2)


# --- the review: suggestions ---------------------------------------------------------------------


class TestSuggestions:
    def test_an_industry_over_represented_in_a_reps_wins_is_suggested_with_its_numbers(
        self, org, east_record
    ):
        # when carol reviews her region
        alice = review_of(org.carol, "alice")
        # then 医疗器械 is suggested for alice, and the numbers say why
        assert [s.industry for s in alice.suggestions] == [MED]
        numbers = alice.suggestions[0].record
        assert (numbers.won, numbers.closed) == (6, 8)
        assert numbers.rate == pytest.approx(6 / 8)
        assert numbers.share == pytest.approx(6 / 8)  # 6 of alice's 8 wins
        assert (numbers.team_won, numbers.team_closed) == (7, 12)
        assert numbers.team_share == pytest.approx(7 / 15)  # 7 of the team's 15 wins
        assert numbers.lift == pytest.approx((6 / 8) / (7 / 15))
        # and bob's strength is his own
        assert [s.industry for s in review_of(org.carol, "bob").suggestions] == [EQUIP]

    def test_the_sentence_shows_the_numbers_behind_the_suggestion(self, org, east_record):
        sentence = reps.suggestion_sentence(review_of(org.carol, "alice").suggestions[0])
        for shown in (MED, "6", "8", "75%", "58%", "47%", "1.6"):
            assert shown in sentence

    def test_an_industry_already_tagged_is_not_suggested_again(self, org, east_record):
        reps.rep_profile_update(actor=org.carol, user=org.alice, specialties=[MED])
        alice = review_of(org.carol, "alice")
        assert alice.suggestions == []
        assert alice.flags == []  # her tag is borne out by her record

    def test_too_few_wins_suggest_nothing(self, org):
        # alice's only wins are in 医疗器械, but there are 4 of them (the rule wants 5)
        record(org.alice, MED, won=4)
        record(org.bob, EQUIP, won=4)
        assert review_of(org.carol, "alice").suggestions == []

    def test_a_share_inflated_by_volume_at_a_worse_win_rate_is_no_specialty(self, org):
        # alice closes lots of 医疗器械 and wins 5 of 25 (20%); the team wins it at 6 of 26 (23%)
        record(org.alice, MED, won=5, lost=20)
        record(org.alice, EQUIP, won=1)
        record(org.bob, MED, won=1)
        record(org.bob, EQUIP, won=4)
        med = next(r for r in review_of(org.carol, "alice").records if r.industry == MED)
        assert med.lift is not None and med.lift >= reps.SUGGEST_MIN_LIFT  # the share alone would suggest it
        assert med.rate < med.team_rate
        assert review_of(org.carol, "alice").suggestions == []

    def test_leads_closed_before_the_window_do_not_count(self, org, east_record):
        clock.set_now(clock.now() + dt.timedelta(days=reps.WINDOW_DAYS + 1))
        alice = review_of(org.carol, "alice")
        assert alice.suggestions == [] and alice.closed == 0 and alice.won == 0

    def test_merged_duplicates_are_not_counted_twice(self, org, east_record):
        won = Lead.objects.filter(owner=org.alice, status="won", customer__industry=MED).first()
        Lead.objects.filter(pk=won.pk).update(merged_into=Lead.objects.exclude(pk=won.pk).first())
        assert next(r for r in review_of(org.carol, "alice").records if r.industry == MED).won == 5


# --- the review: flags -----------------------------------------------------------------------------


class TestFlags:
    def test_a_rep_without_tags_is_flagged(self, org, east_record):
        bob = review_of(org.carol, "bob")
        assert [f.code for f in bob.flags] == [reps.FLAG_BLANK]
        with translation.override("en"):
            assert "No specialty tags" in reps.flag_sentence(bob.flags[0])

    def test_a_tag_without_any_lead_of_its_industry_is_flagged(self, org, east_record):
        customer_make(industry=EDU)  # the industry exists, alice just never had such a lead
        reps.rep_profile_update(actor=org.carol, user=org.alice, specialties=[MED, EDU])
        alice = review_of(org.carol, "alice")
        assert [(f.code, f.industry) for f in alice.flags] == [(reps.FLAG_NO_RECORD, EDU)]
        assert [t.industry for t in alice.tags] == [MED, EDU]

    def test_an_open_lead_of_the_industry_is_enough_to_not_flag_the_tag_as_without_record(self, org):
        record(org.alice, EDU, open_=1)
        reps.rep_profile_update(actor=org.carol, user=org.alice, specialties=[EDU])
        assert review_of(org.carol, "alice").flags == []

    def test_a_tag_the_reps_wins_contradict_is_flagged_with_the_numbers(self, org):
        # alice is tagged 工业设备 but wins 1 of 10; the team wins it at 9 of 20 (45%)
        record(org.alice, EQUIP, won=1, lost=9)
        record(org.bob, EQUIP, won=8, lost=2)
        reps.rep_profile_update(actor=org.carol, user=org.alice, specialties=[EQUIP])
        alice = review_of(org.carol, "alice")
        assert [(f.code, f.industry) for f in alice.flags] == [(reps.FLAG_UNDERPERFORMS, EQUIP)]
        numbers = alice.flags[0].record
        assert (numbers.won, numbers.closed, numbers.team_won, numbers.team_closed) == (1, 10, 9, 20)
        sentence = reps.flag_sentence(alice.flags[0])
        assert all(shown in sentence for shown in (EQUIP, "1", "10", "10%", "45%"))

    def test_a_weak_rate_on_few_closed_leads_is_not_yet_a_contradiction(self, org):
        record(org.alice, EQUIP, won=0, lost=9)  # 9 closed: one short of the rule's 10
        record(org.bob, EQUIP, won=8, lost=2)
        reps.rep_profile_update(actor=org.carol, user=org.alice, specialties=[EQUIP])
        assert review_of(org.carol, "alice").flags == []

    def test_the_team_is_the_reps_region(self, org):
        # erin (华南) wins 医疗器械 far better than anyone, but she is not in 华东's team
        record(org.erin, MED, won=9, lost=0, province="44")
        record(org.alice, MED, won=1, lost=9)
        record(org.bob, MED, won=1, lost=9)
        reps.rep_profile_update(actor=org.carol, user=org.alice, specialties=[MED])
        alice = review_of(org.director, "alice")
        assert alice.tags[0].team_rate == pytest.approx(2 / 20)
        assert alice.flags == []  # as good as her own team


# --- the review: scope and queries ---------------------------------------------------------------


class TestReviewScope:
    @pytest.mark.parametrize(
        ("viewer", "seen"),
        [
            ("carol", {"alice", "bob"}),
            ("dave", {"erin"}),
            ("director", {"alice", "bob", "erin"}),
            ("pm", {"alice", "bob", "erin"}),
            ("admin", {"alice", "bob", "erin"}),
            ("alice", {"alice"}),
        ],
    )
    def test_each_role_reviews_its_scope(self, org, viewer, seen):
        assert {r.username for r in reps.specialty_review(actor=getattr(org, viewer)).reps} == seen

    def test_inactive_reps_are_not_reviewed(self, org):
        org.bob.is_active = False
        org.bob.save()
        assert {r.username for r in reps.specialty_review(actor=org.carol).reps} == {"alice"}

    def test_a_rep_sees_their_numbers_against_their_team(self, org, east_record):
        # alice sees only herself, but her team's numbers are the whole region's
        alice = reps.specialty_review(actor=org.alice).reps[0]
        assert alice.suggestions[0].record.team_won == 7

    def test_the_review_takes_three_queries_whatever_the_number_of_reps(
        self, org, east_record, django_assert_num_queries
    ):
        with django_assert_num_queries(3):
            small = reps.specialty_review(actor=org.director)
        for n in range(4):
            rep = user_make("rep", org.east, username=f"more{n}")
            record(rep, MED, won=1, lost=1)
            reps.rep_profile_update(actor=org.carol, user=rep, specialties=[MED])
            reps.leave_create(
                actor=rep, user=rep, starts_at=clock.now(), ends_at=clock.now() + dt.timedelta(days=1)
            )
        with django_assert_num_queries(3):
            large = reps.specialty_review(actor=org.director)
        assert len(large.reps) == len(small.reps) + 4
        assert all(r.leaves for r in large.reps if r.username.startswith("more"))


# --- the profile service ---------------------------------------------------------------------------


class TestProfileUpdate:
    def test_a_manager_sets_tags_caps_and_hours_and_the_change_is_audited(self, org):
        customer_make(industry=MED)
        profile = reps.rep_profile_update(
            actor=org.carol,
            user=org.alice,
            specialties=[" 医疗器械 ", "医疗器械", ""],
            max_open_leads=30,
            max_new_per_day=5,
            work_days=[5, 1, 1],
            work_start="09:00",
            work_end=dt.time(18, 0),
        )
        profile.refresh_from_db()
        assert profile.specialties == [MED]
        assert (profile.max_open_leads, profile.max_new_per_day) == (30, 5)
        assert profile.work_days == [1, 5]
        assert (profile.work_start, profile.work_end) == (dt.time(9), dt.time(18))
        entry = AuditEntry.objects.get(action="routing.rep_profile.update")
        assert entry.actor_id == org.carol.pk and entry.target_id == str(profile.pk)
        assert entry.before["specialties"] == [] and entry.after["specialties"] == [MED]
        assert entry.after["work_start"] == "09:00" and entry.after["user"] == org.alice.pk

    def test_fields_not_given_stay_and_no_change_writes_no_audit(self, org):
        reps.rep_profile_update(actor=org.carol, user=org.alice, max_open_leads=30)
        reps.rep_profile_update(actor=org.carol, user=org.alice, max_new_per_day=5)
        reps.rep_profile_update(actor=org.carol, user=org.alice, max_new_per_day=5)
        profile = RepProfile.objects.get(user=org.alice)
        assert (profile.max_open_leads, profile.max_new_per_day) == (30, 5)
        assert AuditEntry.objects.filter(action="routing.rep_profile.update").count() == 2

    @pytest.mark.parametrize(
        ("actor", "target", "allowed"),
        [
            ("carol", "alice", True),
            ("carol", "erin", False),  # another region's rep
            ("carol", "carol", False),  # a manager does not set their own
            ("carol", "dave", False),
            ("director", "erin", True),
            ("director", "dave", True),  # managers join pools by name: their caps are set too
            ("admin", "alice", True),
            ("pm", "alice", False),
            ("alice", "alice", False),  # a rep does not set their own caps or tags
            ("alice", "bob", False),
        ],
    )
    def test_who_may_set_a_profile(self, org, actor, target, allowed):
        change = {"actor": getattr(org, actor), "user": getattr(org, target), "max_open_leads": 10}
        if allowed:
            assert reps.rep_profile_update(**change).max_open_leads == 10
        else:
            with pytest.raises(PermissionDenied):
                reps.rep_profile_update(**change)

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"specialties": ["x" * 41]}, "specialties"),
            ({"specialties": ["没有这个行业"]}, "specialties"),
            ({"specialties": ["医疗\x00器械"]}, "specialties"),
            ({"specialties": "医疗器械"}, "specialties"),
            ({"specialties": [f"行业{n}" for n in range(21)]}, "specialties"),
            ({"max_open_leads": 0}, "max_open_leads"),
            ({"max_open_leads": 10**12}, "max_open_leads"),
            ({"max_new_per_day": -1}, "max_new_per_day"),
            ({"max_new_per_day": True}, "max_new_per_day"),
            ({"work_days": [0, 1]}, "work_days"),
            ({"work_days": [8]}, "work_days"),
            ({"work_start": "25:00", "work_end": "18:00"}, "work_start"),
            ({"work_start": "09:00"}, "work_end"),
            ({"work_end": "18:00"}, "work_start"),
            ({"work_start": "09:00", "work_end": "09:00"}, "work_end"),
        ],
    )
    def test_bad_values_are_refused_naming_the_field_and_nothing_changes(self, org, change, field):
        customer_make(industry=MED)
        with pytest.raises(ValidationError) as refused:
            reps.rep_profile_update(actor=org.carol, user=org.alice, **change)
        assert field in refused.value.message_dict
        assert not RepProfile.objects.filter(user=org.alice).exclude(specialties=[]).exists()
        assert not AuditEntry.objects.filter(action="routing.rep_profile.update").exists()

    def test_an_unknown_industry_is_refused_with_the_industries_customers_have(self, org):
        customer_make(industry=MED)
        with pytest.raises(ValidationError) as refused:
            reps.rep_profile_update(actor=org.carol, user=org.alice, specialties=["医疗"])
        message = refused.value.message_dict["specialties"][0]
        assert "医疗" in message and MED in message

    def test_a_night_shift_is_allowed(self, org):
        profile = reps.rep_profile_update(
            actor=org.carol, user=org.alice, work_start="20:00", work_end="08:00"
        )
        assert (profile.work_start, profile.work_end) == (dt.time(20), dt.time(8))


# --- leave -------------------------------------------------------------------------------------


class TestLeave:
    def test_a_rep_records_and_withdraws_their_own_leave_audited(self, org):
        now = clock.now()
        leave = reps.leave_create(
            actor=org.alice, user=org.alice, starts_at=now, ends_at=now + dt.timedelta(days=2), reason="年假"
        )
        created = AuditEntry.objects.get(action="routing.leave.create")
        assert created.actor_id == org.alice.pk and created.after["reason"] == "年假"
        reps.leave_delete(actor=org.alice, leave=leave)
        assert not Leave.objects.exists()
        deleted = AuditEntry.objects.get(action="routing.leave.delete")
        assert deleted.before["ends_at"] == (now + dt.timedelta(days=2)).isoformat()

    @pytest.mark.parametrize(
        ("actor", "allowed"),
        [("carol", True), ("director", True), ("bob", False), ("dave", False), ("pm", False)],
    )
    def test_who_may_record_a_reps_leave(self, org, actor, allowed):
        now = clock.now()
        args = {
            "actor": getattr(org, actor),
            "user": org.alice,
            "starts_at": now,
            "ends_at": now + dt.timedelta(hours=4),
        }
        if allowed:
            assert reps.leave_create(**args).user_id == org.alice.pk
        else:
            with pytest.raises(PermissionDenied):
                reps.leave_create(**args)

    @pytest.mark.parametrize(
        ("starts", "ends", "field"),
        [
            (dt.timedelta(days=2), dt.timedelta(days=1), "ends_at"),  # ends before it starts
            (dt.timedelta(days=1), dt.timedelta(days=1), "ends_at"),
            (dt.timedelta(days=-3), dt.timedelta(days=-1), "ends_at"),  # already over
            (dt.timedelta(days=1), dt.timedelta(days=400), "ends_at"),  # more than a year
        ],
    )
    def test_impossible_leaves_are_refused_naming_the_field(self, org, starts, ends, field):
        now = clock.now()
        with pytest.raises(ValidationError) as refused:
            reps.leave_create(actor=org.carol, user=org.alice, starts_at=now + starts, ends_at=now + ends)
        assert field in refused.value.message_dict
        assert not Leave.objects.exists()

    def test_a_naive_time_and_a_too_long_reason_are_refused(self, org):
        with pytest.raises(ValidationError) as refused:
            reps.leave_create(
                actor=org.carol,
                user=org.alice,
                starts_at=dt.datetime(2030, 1, 1),
                ends_at=dt.datetime(2030, 1, 2, tzinfo=dt.UTC),
                reason="长" * 201,
            )
        assert set(refused.value.message_dict) == {"starts_at", "reason"}

    def test_a_leave_years_ahead_is_refused(self, org):
        starts = clock.now() + dt.timedelta(days=365 * reps.MAX_AHEAD_YEARS + 1)
        with pytest.raises(ValidationError) as refused:
            reps.leave_create(
                actor=org.carol, user=org.alice, starts_at=starts, ends_at=starts + dt.timedelta(days=1)
            )
        assert "starts_at" in refused.value.message_dict

    def test_overlapping_leaves_are_refused(self, org):
        now = clock.now()
        reps.leave_create(actor=org.alice, user=org.alice, starts_at=now, ends_at=now + dt.timedelta(days=3))
        with pytest.raises(ValidationError) as refused:
            reps.leave_create(
                actor=org.alice,
                user=org.alice,
                starts_at=now + dt.timedelta(days=2),
                ends_at=now + dt.timedelta(days=5),
            )
        assert "starts_at" in refused.value.message_dict

    def test_a_leave_that_is_over_stays_on_record(self, org):
        now = clock.now()
        leave = reps.leave_create(
            actor=org.alice, user=org.alice, starts_at=now, ends_at=now + dt.timedelta(days=1)
        )
        clock.set_now(now + dt.timedelta(days=2))
        with pytest.raises(ValidationError):
            reps.leave_delete(actor=org.carol, leave=leave)
        assert Leave.objects.filter(pk=leave.pk).exists()


# --- what routing makes of it ----------------------------------------------------------------------


class TestRoutingReadsTheProfile:
    def test_a_tag_set_by_the_manager_wins_an_industry_match_and_a_leave_skips_the_rep(self, org):
        # given: a specialty rule over 华东, and alice tagged 医疗器械 by carol
        in_force(
            org.admin,
            definition(
                rule("specialists", 10, strategy="specialty", regions=["east"]),
                fallback={"pool": {"users": ["bob"]}, "strategy": "round_robin"},
            ),
        )
        customer = customer_make(province="31", industry=MED)
        reps.rep_profile_update(actor=org.carol, user=org.alice, specialties=[MED])
        # when: a 医疗器械 lead arrives, then another while alice is on leave
        first = lead_route(lead=lead_make(customer=customer))
        now = clock.now()
        reps.leave_create(actor=org.alice, user=org.alice, starts_at=now, ends_at=now + dt.timedelta(days=1))
        second = lead_route(lead=lead_make(customer=customer))
        # then: alice got the first by her tag; the second went to the fallback, alice "on leave"
        assert first.assignee_id == org.alice.pk and first.rule_id == "specialists"
        assert second.assignee_id == org.bob.pk and second.method == "fallback"
        candidates = assignment_explanation(second)["rules"][0]["candidates"]
        assert {c["user_id"]: c["reason"] for c in candidates}[org.alice.pk] == "on_leave"


# --- the REST API ----------------------------------------------------------------------------------


def send(client, method: str, path: str, user_api, body=None):
    """PUT and DELETE with the persona's token (the shared ApiClient speaks GET, POST, PATCH)."""
    return getattr(client, method)(
        path,
        json.dumps(body) if body is not None else None,
        content_type="application/json",
        headers=user_api.headers,
    )


class TestApi:
    def test_the_review_lists_profiles_suggestions_and_flags_with_sentences(self, org, api_as, east_record):
        body = api_as(org.carol).get("/api/v1/routing/reps").json()
        assert body["rule"]["suggest_min_wins"] == reps.SUGGEST_MIN_WINS
        by_name = {r["username"]: r for r in body["reps"]}
        assert set(by_name) == {"alice", "bob"}
        alice = by_name["alice"]
        assert alice["suggestions"][0]["industry"] == MED
        assert alice["suggestions"][0]["record"]["won"] == 6
        assert MED in alice["suggestions"][0]["text"]
        assert alice["flags"][0]["code"] == "blank" and alice["flags"][0]["text"]
        assert alice["profile"] == {
            "specialties": [],
            "max_open_leads": None,
            "max_new_per_day": None,
            "work_days": [],
            "work_start": None,
            "work_end": None,
        }
        assert alice["may_edit"] is True

    def test_a_narrower_window_is_asked_by_days_and_a_bad_one_is_422(self, org, api_as):
        api = api_as(org.carol)
        assert api.get("/api/v1/routing/reps", days=30).json()["window_days"] == 30
        assert api.get("/api/v1/routing/reps", days=0).status_code == 422

    def test_a_manager_puts_a_profile_and_reads_it_back(self, org, api_as, client):
        customer_make(industry=MED)
        api = api_as(org.carol)
        profile = {
            "specialties": [MED],
            "max_open_leads": 40,
            "max_new_per_day": 8,
            "work_days": [1, 2, 3, 4, 5],
            "work_start": "09:00",
            "work_end": "18:00",
        }
        response = send(client, "put", f"/api/v1/routing/reps/{org.alice.pk}", api, profile)
        assert response.status_code == 200, response.content
        assert response.json()["profile"] == {**profile, "work_start": "09:00:00", "work_end": "18:00:00"}
        assert api.get(f"/api/v1/routing/reps/{org.alice.pk}").json()["profile"]["specialties"] == [MED]
        # PUT replaces: what it leaves out is cleared; PATCH changes only what it names
        assert (
            api.patch(f"/api/v1/routing/reps/{org.alice.pk}", {"max_open_leads": 10}).json()["profile"][
                "max_new_per_day"
            ]
            == 8
        )
        cleared = send(client, "put", f"/api/v1/routing/reps/{org.alice.pk}", api, {"specialties": [MED]})
        assert cleared.json()["profile"]["max_open_leads"] is None

    def test_validation_errors_name_the_field(self, org, api_as, client):
        api = api_as(org.carol)
        path = f"/api/v1/routing/reps/{org.alice.pk}"
        for body, field in [
            ({"work_days": [9]}, "work_days"),
            ({"max_open_leads": 0}, "max_open_leads"),
            ({"specialties": ["没有的行业"]}, "specialties"),
            ({"work_start": "09:00"}, "work_end"),
        ]:
            response = send(client, "put", path, api, body)
            assert response.status_code == 422, (body, response.content)
            assert response.json()["detail"][0]["loc"] == ["body", field]
        assert send(client, "put", path, api, {"work_days": "monday"}).status_code == 422

    def test_out_of_scope_reps_are_404_and_looking_is_not_changing(self, org, api_as, client):
        carol, alice, pm = api_as(org.carol), api_as(org.alice), api_as(org.pm)
        erin = f"/api/v1/routing/reps/{org.erin.pk}"
        assert carol.get(erin).status_code == 404
        assert send(client, "put", erin, carol, {}).status_code == 404
        starts = clock.now() + dt.timedelta(days=1)
        leave = {"starts_at": starts.isoformat(), "ends_at": (starts + dt.timedelta(days=1)).isoformat()}
        assert carol.post(f"{erin}/leaves", leave).status_code == 404
        assert alice.get(f"/api/v1/routing/reps/{org.bob.pk}").status_code == 404
        assert carol.get("/api/v1/routing/reps/987654321").status_code == 404
        # a rep reads their own profile but does not set it; a product manager reads, never sets
        assert alice.get(f"/api/v1/routing/reps/{org.alice.pk}").json()["may_edit"] is False
        assert send(client, "put", f"/api/v1/routing/reps/{org.alice.pk}", alice, {}).status_code == 403
        assert pm.get(erin).status_code == 200
        assert send(client, "put", erin, pm, {}).status_code == 403
        # and a user routing never picks is no rep
        assert api_as(org.director).get(f"/api/v1/routing/reps/{org.pm.pk}").status_code == 404

    def test_a_managers_own_profile_and_leave_are_theirs_to_read(self, org, api_as):
        now = clock.now()
        leave = reps.leave_create(
            actor=org.carol, user=org.carol, starts_at=now, ends_at=now + dt.timedelta(days=1)
        )
        body = api_as(org.carol).get(f"/api/v1/routing/reps/{org.carol.pk}").json()
        assert body["role"] == "manager" and body["may_edit"] is False and body["may_record_leave"] is True
        assert [(x["id"], x["current"]) for x in body["leaves"]] == [(leave.pk, True)]

    def test_leaves_are_recorded_and_withdrawn(self, org, api_as, client):
        alice = api_as(org.alice)
        starts = clock.now() + dt.timedelta(days=1)
        created = alice.post(
            f"/api/v1/routing/reps/{org.alice.pk}/leaves",
            {
                "starts_at": starts.isoformat(),
                "ends_at": (starts + dt.timedelta(days=2)).isoformat(),
                "reason": "婚假",
            },
        )
        assert created.status_code == 201, created.content
        leave_id = created.json()["id"]
        assert created.json()["current"] is False
        listed = api_as(org.carol).get(f"/api/v1/routing/reps/{org.alice.pk}").json()["leaves"]
        assert [leave["id"] for leave in listed] == [leave_id]
        path = f"/api/v1/routing/reps/{org.alice.pk}/leaves/{leave_id}"
        assert (
            send(
                client, "delete", f"/api/v1/routing/reps/{org.bob.pk}/leaves/{leave_id}", api_as(org.bob)
            ).status_code
            == 404
        )
        assert send(client, "delete", path, api_as(org.bob)).status_code == 404
        assert send(client, "delete", path, alice).status_code == 204
        assert send(client, "delete", path, alice).status_code == 404

    def test_moments_at_the_edge_of_the_calendar_are_422_not_500(self, org, api_as):
        path = f"/api/v1/routing/reps/{org.alice.pk}/leaves"
        for starts_at, ends_at in [
            ("9999-12-31T20:00:00-05:00", "9999-12-31T23:00:00-05:00"),
            ("0001-01-01T00:00:00+01:00", "2030-01-01T00:00:00+08:00"),
        ]:
            response = api_as(org.carol).post(path, {"starts_at": starts_at, "ends_at": ends_at})
            assert response.status_code == 422, response.content
        assert not Leave.objects.exists()

    def test_leave_errors_name_the_field(self, org, api_as):
        api = api_as(org.carol)
        starts = clock.now() + dt.timedelta(days=1)
        path = f"/api/v1/routing/reps/{org.alice.pk}/leaves"
        backwards = api.post(
            path, {"starts_at": starts.isoformat(), "ends_at": (starts - dt.timedelta(hours=1)).isoformat()}
        )
        assert backwards.status_code == 422 and backwards.json()["detail"][0]["loc"] == ["body", "ends_at"]
        naive = api.post(path, {"starts_at": "2030-01-01T09:00:00", "ends_at": "2030-01-02T09:00:00"})
        assert naive.status_code == 422 and naive.json()["detail"][0]["loc"][-1] in {"starts_at", "ends_at"}
        assert api.post(path, {"starts_at": "tomorrow", "ends_at": "later"}).status_code == 422
