"""C8.3: a rule set is drafted, simulated, published with notice to the committee, and can be rolled
back at once with a reason; every change is audited."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from salesloop.core import clock
from salesloop.core.models import AuditEntry
from salesloop.notify.models import Notification
from salesloop.routing.models import ReportKind, ReportStatus, RoutingReport, RuleSetStatus
from salesloop.routing.services import (
    lead_route,
    policy_update,
    ruleset_cancel,
    ruleset_create,
    ruleset_in_force,
    ruleset_publish,
    ruleset_rollback,
    ruleset_update,
)
from tests.factories import lead_make
from tests.routing.conftest import definition, in_force, rule

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 2, 2, 0, tzinfo=dt.UTC)  # Monday 10:00 in Shanghai


def simulated(ruleset, *, worse: bool = False, drop: float = 0.0) -> RoutingReport:
    """A finished replay of the version, as the sandbox leaves it (its computation is tested in
    test_sandbox.py); here only the publication gate reads it."""
    return RoutingReport.objects.create(
        ruleset=ruleset,
        kind=ReportKind.REPLAY,
        status=ReportStatus.DONE,
        worse=worse,
        region_match_drop=drop,
        findings=[{"code": "region_match_down", "severity": "block", "text": "区域匹配率下降"}]
        if worse
        else [],
        finished_at=clock.now(),
    )


class TestDrafts:
    def test_a_draft_is_numbered_and_audited_and_only_drafts_are_edited(self, org):
        clock.set_now(T0)
        draft = ruleset_create(actor=org.director, definition=definition(rule("east", 10, regions=["east"])))
        assert draft.version == 1 and draft.status == RuleSetStatus.DRAFT
        changed = definition(rule("east", 10, regions=["east"]), rule("south", 20, regions=["south"]))
        ruleset_update(actor=org.director, ruleset=draft, definition=changed)
        entries = list(
            AuditEntry.objects.filter(target_type="routing.ruleset", target_id=str(draft.pk))
            .order_by("id")
            .values_list("action", flat=True)
        )
        assert entries == ["routing.ruleset.create", "routing.ruleset.update"]
        update = AuditEntry.objects.get(action="routing.ruleset.update")
        assert (
            len(update.before["definition"]["rules"]) == 1 and len(update.after["definition"]["rules"]) == 2
        )
        simulated(draft)
        ruleset_publish(actor=org.director, ruleset=draft)
        with pytest.raises(ValidationError) as refused:
            ruleset_update(actor=org.director, ruleset=draft, definition=changed)
        assert "status" in refused.value.message_dict

    def test_reps_and_managers_cannot_write_rules(self, org):
        for person in (org.alice, org.carol):
            with pytest.raises(PermissionDenied):
                ruleset_create(actor=person, definition=definition())

    def test_an_invalid_document_is_refused_with_the_path_of_each_error(self, org):
        bad = definition(
            rule("east", 10, users=["alice", "nobody"]),
            rule("east", 20, strategy="telepathy", regions=["east"]),
        )
        bad["rules"][0]["when"] = {"provinces": ["火星"], "weekdays": [8]}
        with pytest.raises(ValidationError) as refused:
            ruleset_create(actor=org.director, definition=bad)
        errors = refused.value.message_dict
        assert any(key.startswith("definition.rules[0].when.provinces") for key in errors), errors
        assert any(key.startswith("definition.rules[0].when.weekdays") for key in errors), errors
        assert any(key.startswith("definition.rules[1].strategy") for key in errors), errors

    def test_unknown_people_teams_and_regions_are_named_by_path(self, org):
        bad = definition(rule("east", 10, users=["alice", "nobody"], regions=["mars"]))
        with pytest.raises(ValidationError) as refused:
            ruleset_create(actor=org.director, definition=bad)
        errors = refused.value.message_dict
        assert errors["definition.rules[0].pool.users[1]"] == ["no user 'nobody'"]
        assert "definition.rules[0].pool.regions[0]" in errors

    def test_a_fallback_is_mandatory_and_priorities_are_unique(self, org):
        missing = definition(rule("east", 10, regions=["east"]))
        del missing["fallback"]
        with pytest.raises(ValidationError) as refused:
            ruleset_create(actor=org.director, definition=missing)
        assert "definition.fallback" in refused.value.message_dict
        twice = definition(rule("a", 10, regions=["east"]), rule("b", 10, regions=["south"]))
        with pytest.raises(ValidationError) as refused:
            ruleset_create(actor=org.director, definition=twice)
        assert "definition.rules[1].priority" in refused.value.message_dict


class TestPublish:
    def test_publishing_needs_a_simulation_and_the_notice_period(self, org):
        clock.set_now(T0)
        draft = ruleset_create(actor=org.director, definition=definition(rule("east", 10, regions=["east"])))
        with pytest.raises(ValidationError) as refused:
            ruleset_publish(actor=org.director, ruleset=draft)
        assert "report" in refused.value.message_dict
        simulated(draft)
        with pytest.raises(ValidationError) as refused:
            ruleset_publish(actor=org.director, ruleset=draft, effective_at=T0 + dt.timedelta(hours=47))
        assert "effective_at" in refused.value.message_dict
        published = ruleset_publish(actor=org.director, ruleset=draft)
        assert published.effective_at == T0 + dt.timedelta(hours=48)

    def test_a_version_takes_effect_only_at_its_effective_time(self, org):
        clock.set_now(T0)
        draft = ruleset_create(
            actor=org.director,
            definition=definition(fallback={"pool": {"users": ["bob"]}, "strategy": "round_robin"}),
        )
        simulated(draft)
        ruleset_publish(actor=org.director, ruleset=draft)
        before = lead_make()
        assert lead_route(lead=before) is None and ruleset_in_force() is None
        clock.set_now(T0 + dt.timedelta(hours=48, seconds=1))
        assert ruleset_in_force() == draft
        assert lead_route(lead=lead_make()).assignee_id == org.bob.pk

    def test_the_committee_is_notified_with_the_report(self, org):
        clock.set_now(T0)
        policy_update(actor=org.admin, committee=[org.carol, org.dave], notice_hours=72)
        draft = ruleset_create(actor=org.director, definition=definition(rule("east", 10, regions=["east"])))
        report = simulated(draft)
        ruleset_publish(actor=org.director, ruleset=draft, note="按区域轮转")
        notices = Notification.objects.filter(kind="routing.publish")
        assert sorted(n.user_id for n in notices) == sorted([org.carol.pk, org.dave.pk])
        assert all(n.link == f"/routing/reports/{report.pk}/" for n in notices)
        assert "2026-11-05 10:00" in notices[0].title  # 72 h of notice, in Shanghai time

    def test_a_worse_version_needs_a_written_override(self, org):
        clock.set_now(T0)
        draft = ruleset_create(actor=org.director, definition=definition(rule("east", 10, regions=["east"])))
        simulated(draft, worse=True, drop=0.42)
        with pytest.raises(ValidationError) as refused:
            ruleset_publish(actor=org.director, ruleset=draft)
        assert "42.0 points" in refused.value.message_dict["override_reason"][0]
        published = ruleset_publish(actor=org.director, ruleset=draft, override_reason="大促期间临时使用")
        assert published.override_reason == "大促期间临时使用"
        entry = AuditEntry.objects.get(action="routing.ruleset.publish")
        assert entry.reason == "大促期间临时使用" and entry.actor == org.director

    def test_a_scheduled_version_can_be_withdrawn_before_it_takes_effect(self, org):
        clock.set_now(T0)
        draft = ruleset_create(actor=org.director, definition=definition())
        simulated(draft)
        ruleset_publish(actor=org.director, ruleset=draft)
        with pytest.raises(ValidationError):
            ruleset_cancel(actor=org.director, ruleset=draft, reason=" ")
        ruleset_cancel(actor=org.director, ruleset=draft, reason="委员会有异议")
        clock.set_now(T0 + dt.timedelta(days=3))
        assert ruleset_in_force() is None


class TestRollback:
    def test_an_admin_rolls_back_at_once_and_the_previous_version_is_in_force_again(self, org):
        clock.set_now(T0)
        first = in_force(
            org.admin,
            definition(fallback={"pool": {"users": ["alice"]}, "strategy": "round_robin"}),
            since=dt.timedelta(days=10),
        )
        second = in_force(
            org.admin, definition(fallback={"pool": {"users": ["bob"]}, "strategy": "round_robin"})
        )
        assert lead_route(lead=lead_make()).assignee_id == org.bob.pk
        with pytest.raises(PermissionDenied):
            ruleset_rollback(actor=org.director, reason="投诉增加")
        with pytest.raises(ValidationError):
            ruleset_rollback(actor=org.admin, reason="")
        rolled = ruleset_rollback(actor=org.admin, reason="投诉增加 210%")
        assert rolled == second and ruleset_in_force() == first
        assert lead_route(lead=lead_make()).assignee_id == org.alice.pk
        entry = AuditEntry.objects.get(action="routing.ruleset.rollback")
        assert entry.reason == "投诉增加 210%" and entry.after["in_force_again"] == first.version
        assert entry.before["status"] == "published" and entry.after["status"] == "rolled_back"

    def test_the_first_version_cannot_be_rolled_back(self, org):
        in_force(org.admin, definition())
        with pytest.raises(ValidationError) as refused:
            ruleset_rollback(actor=org.admin, reason="试试")
        assert "ruleset" in refused.value.message_dict

    def test_policy_changes_are_audited_with_before_and_after(self, org):
        policy_update(actor=org.admin, notice_hours=24, region_match_margin="0.1")
        entry = AuditEntry.objects.get(action="routing.policy.update")
        assert entry.before["notice_hours"] == 48 and entry.after["notice_hours"] == 24
        with pytest.raises(ValidationError) as refused:
            policy_update(actor=org.admin, ab_share="1.5")
        assert "ab_share" in refused.value.message_dict
        with pytest.raises(PermissionDenied):
            policy_update(actor=org.director, notice_hours=1)
