"""The manager's day (SPEC C4.3), the daily reminder (C4.1) and the configuration behind check-ins:
action types and the reminder hour are data, changed with an audit trail."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command

from salesloop.accounts.models import Team
from salesloop.core import clock
from salesloop.core.models import AuditEntry
from salesloop.engagement import checkin_services as services
from salesloop.engagement.checkin_models import CheckinActionType, CheckinReminder
from salesloop.engagement.checkin_selectors import team_day
from salesloop.notify.models import Notification
from tests.engagement.checkin_helpers import checkin_make, uploaded
from tests.factories import lead_make, lead_ready_for, user_make

pytestmark = pytest.mark.django_db

SHANGHAI_10AM = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
DAY = dt.date(2026, 3, 2)


def at_shanghai(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, 2, hour - 8, minute, tzinfo=dt.UTC)


class TestTeamDay:
    @pytest.fixture
    def day(self, org):
        """alice visits twice (one moves her lead), bob calls once, erin (华南) visits; nobody else."""
        clock.set_now(SHANGHAI_10AM)
        alpha = Team.objects.create(name="华东一组", region=org.east)
        org.alice.team = alpha
        org.alice.save()
        self.third = user_make("rep", org.east, username="frank")
        moving = lead_ready_for(lead_make(owner=org.alice, title="会动的线索"), "needs_confirmed")
        checkin_make(org.alice, moving, to_stage="needs_confirmed")
        checkin_make(org.alice, lead_make(owner=org.alice), result_type="stalled")
        checkin_make(org.bob, lead_make(owner=org.bob), action_type="call", result_type="follow_up")
        checkin_make(org.erin, lead_make(owner=org.erin, province="44"))
        return DAY

    def test_a_manager_sees_who_checked_in_what_happened_and_who_did_not(self, org, day):
        summary = team_day(user=org.carol, day=day)
        by_rep = {row.rep.username: row for row in summary.reps}
        # only 华东's reps: erin (华南) is not carol's
        assert set(by_rep) == {"alice", "bob", "frank"}
        assert (by_rep["alice"].count, dict(by_rep["alice"].by_action)) == (2, {"visit": 2})
        assert dict(by_rep["alice"].by_result) == {"progressed": 1, "stalled": 1}
        assert [c.lead.title for c in by_rep["alice"].moved] == ["会动的线索"]
        assert [row.rep.username for row in summary.without] == ["frank"]
        assert dict(summary.by_action) == {"visit": 2, "call": 1}
        assert summary.total == 3

    def test_a_team_narrows_it_and_another_regions_team_is_not_found(self, org, day):
        from django.http import Http404

        alpha = Team.objects.get(name="华东一组")
        assert [row.rep.username for row in team_day(user=org.carol, day=day, team_id=alpha.pk).reps] == [
            "alice"
        ]
        with pytest.raises(Http404):
            team_day(user=org.dave, day=day, team_id=alpha.pk)

    def test_it_takes_a_fixed_number_of_queries(self, org, day, django_assert_num_queries):
        with django_assert_num_queries(3):  # reps, check-ins, action types
            small = team_day(user=org.director, day=day)
            [row.rep.team for row in small.reps]  # teams come with the reps
        for _ in range(5):
            rep = user_make("rep", org.east)
            checkin_make(rep, lead_make(owner=rep), upload_ids=[uploaded(rep).pk])
        with django_assert_num_queries(3):
            bigger = team_day(user=org.director, day=day)
            [row.rep.team for row in bigger.reps]
        assert bigger.total == small.total + 5

    def test_the_daily_api_answers_the_same(self, org, day, api_as):
        response = api_as(org.carol).get("/api/v1/checkins/daily", date=day.isoformat())
        assert response.status_code == 200
        out = response.json()
        assert out["checkins"] == 3
        assert out["reps_without_checkin"] == [self.third.pk]
        assert [m["to_stage"] for m in out["moved"]] == ["needs_confirmed"]
        assert {c["code"]: c["count"] for c in out["by_result"]}["follow_up"] == 1
        # a rep asking sees only their own row
        mine = api_as(org.bob).get("/api/v1/checkins/daily", date=day.isoformat()).json()
        assert [(r["rep_id"], r["checkins"]) for r in mine["reps"]] == [(org.bob.pk, 1)]
        assert api_as(org.carol).get("/api/v1/checkins/daily", date="2026-02-30").status_code == 422


class TestReminder:
    def test_reps_without_a_checkin_are_reminded_once_after_the_hour(self, org):
        # given alice checked in today, bob and erin did not; the organisation's hour is 18:00
        clock.set_now(at_shanghai(10))
        checkin_make(org.alice, lead_make(owner=org.alice))
        services.reminder_setting_set(actor=org.admin, hour=18)

        # before 18:00 nobody is reminded
        clock.set_now(at_shanghai(17, 59))
        assert services.checkins_remind() == 0

        # at 18:05, bob and erin are — once, however often the job runs
        clock.set_now(at_shanghai(18, 5))
        assert services.checkins_remind() == 2
        call_command("checkin_remind")
        assert services.checkins_remind() == 0
        reminded = Notification.objects.filter(kind="checkin_reminder")
        assert sorted(n.user.username for n in reminded) == ["bob", "erin"]
        assert reminded.first().link == "/checkins/new"
        assert CheckinReminder.objects.filter(day=DAY).count() == 2

        # the next day starts again
        clock.set_now(at_shanghai(18, 5) + dt.timedelta(days=1))
        assert services.checkins_remind() == 3

    def test_a_teams_own_hour_is_a_new_version_and_audited(self, org):
        clock.set_now(at_shanghai(9))
        night = Team.objects.create(name="夜班", region=org.east)
        org.bob.team = night
        org.bob.save()
        services.reminder_setting_set(actor=org.admin, hour=17)
        services.reminder_setting_set(actor=org.director, hour=21, team=night)
        later = services.reminder_setting_set(actor=org.admin, hour=20, team=night)
        assert later.version == 2
        assert AuditEntry.objects.filter(action="checkin_reminder.set").count() == 3

        clock.set_now(at_shanghai(17, 30))
        services.checkins_remind()
        assert sorted(n.user.username for n in Notification.objects.all()) == ["alice", "erin"]
        clock.set_now(at_shanghai(20, 1))
        services.checkins_remind()
        assert Notification.objects.filter(user=org.bob).count() == 1

    def test_only_directors_and_admins_set_it_and_the_hour_is_checked(self, org, api_as):
        assert api_as(org.carol).post("/api/v1/checkins/reminder-settings", {"hour": 9}).status_code == 403
        response = api_as(org.admin).post("/api/v1/checkins/reminder-settings", {"hour": 24})
        assert [d["loc"][-1] for d in response.json()["detail"]] == ["hour"]
        assert api_as(org.admin).post("/api/v1/checkins/reminder-settings", {"hour": 19}).status_code == 201

    def test_a_time_with_any_valid_offset_is_stored_as_the_instant_it_names(self, org, api_as):
        """ISO 8601 allows offsets up to ±23:59, PostgreSQL only to ±15:59: such a time (found by the
        API fuzz test) must be stored, converted to UTC, not answered with a 500."""
        from salesloop.engagement.checkin_models import CheckinReminderSetting

        response = api_as(org.admin).post(
            "/api/v1/checkins/reminder-settings", {"hour": 9, "effective_at": "2030-08-17T05:44:39+23:26"}
        )
        assert response.status_code == 201, response.content
        stored = CheckinReminderSetting.objects.get(hour=9).effective_at
        assert stored == dt.datetime(2030, 8, 16, 6, 18, 39, tzinfo=dt.UTC)


class TestActionTypes:
    def test_the_defaults_are_there_with_chinese_and_english_labels(self, db):
        labels = {k.code: (k.label_zh, k.label_en) for k in CheckinActionType.objects.all()}
        assert labels["visit"] == ("拜访", "Visit")
        assert labels["proposal_sent"] == ("发送方案", "Proposal sent")
        assert labels["contract"] == ("签约", "Contract")

    def test_admins_add_relabel_and_retire_them_with_an_audit_trail(self, org, api_as):
        admin = api_as(org.admin)
        created = admin.post(
            "/api/v1/checkins/action-types",
            {"code": "site_survey", "label_zh": "现场勘察", "label_en": "Site survey"},
        )
        assert created.status_code == 201
        kind_id = created.json()["id"]
        assert (
            admin.patch(f"/api/v1/checkins/action-types/{kind_id}", {"active": False}).json()["active"]
            is False
        )
        entries = AuditEntry.objects.filter(
            target_type="engagement.checkinactiontype", target_id=str(kind_id)
        )
        assert [e.action for e in entries.order_by("id")] == [
            "checkin_action_type.create",
            "checkin_action_type.update",
        ]
        assert entries.order_by("id").last().before["active"] is True
        # duplicates and bad codes are refused by field; reps may not configure
        again = admin.post(
            "/api/v1/checkins/action-types", {"code": "site_survey", "label_zh": "x", "label_en": "x"}
        )
        assert [d["loc"][-1] for d in again.json()["detail"]] == ["code"]
        bad = admin.post(
            "/api/v1/checkins/action-types", {"code": "Site Survey", "label_zh": "x", "label_en": "x"}
        )
        assert bad.status_code == 422
        rep = api_as(org.alice).post(
            "/api/v1/checkins/action-types", {"code": "golf", "label_zh": "高尔夫", "label_en": "Golf"}
        )
        assert rep.status_code == 403


def test_the_admin_page_configures_action_types_through_the_service(org, client):
    # given an administrator on the admin page
    client.force_login(org.admin)
    assert client.get("/admin/engagement/checkinactiontype/").status_code == 200

    # when they add a type there
    response = client.post(
        "/admin/engagement/checkinactiontype/add/",
        {
            "code": "dinner",
            "label_zh": "商务宴请",
            "label_en": "Business dinner",
            "position": 90,
            "active": "on",
        },
    )

    # then it exists, offered on the check-in page, and the change is audited like any other
    assert response.status_code == 302, response.content
    kind = CheckinActionType.objects.get(code="dinner")
    assert AuditEntry.objects.filter(action="checkin_action_type.create", target_id=str(kind.pk)).exists()
    # and deleting is not offered: a type is retired instead
    assert client.get(f"/admin/engagement/checkinactiontype/{kind.pk}/delete/").status_code == 403


def test_a_reps_daily_report_takes_two_queries_however_long(org, django_assert_num_queries):
    from salesloop.engagement.checkin_selectors import checkins_of_day

    clock.set_now(SHANGHAI_10AM)
    for _ in range(4):
        checkin_make(org.alice, lead_make(owner=org.alice), upload_ids=[uploaded(org.alice).pk])
    with django_assert_num_queries(2):  # check-ins with lead, type, stages; evidence with attachments
        report = checkins_of_day(user=org.carol, rep=org.alice, day=DAY)
        assert [len(c.evidence.all()) for c in report] == [1, 1, 1, 1]
        assert {c.stage.code for c in report} == {"screening"}
