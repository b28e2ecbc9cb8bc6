"""Engagement services (SPEC C3.4): every fact kind, its refusals by field, and view-time capping."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from salesloop.core import clock
from salesloop.core.models import AuditEntry
from salesloop.engagement import selectors, services
from salesloop.engagement.models import DocumentView, Meeting, MeetingStatus, Touch
from tests.engagement.conftest import pdf_upload
from tests.factories import contact_make, customer_make, lead_make

T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)


def field_of(exc: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return list(exc.value.message_dict)


@pytest.fixture
def lead(org):
    clock.set_now(T0)
    return lead_make(owner=org.alice)


class TestAttachments:
    def test_a_pdf_is_stored_with_its_checked_content_type(self, org, lead):
        attachment = services.attachment_add(
            actor=org.alice, lead=lead, kind="Proposal", title="", file=pdf_upload()
        )
        assert attachment.kind == "proposal"
        assert attachment.content_type == "application/pdf"
        assert attachment.title.endswith(".pdf")
        assert attachment.file.read().startswith(b"%PDF-")
        assert AuditEntry.objects.filter(action="attachment.add", target_id=str(attachment.pk)).exists()

    def test_a_link_is_stored(self, org, lead):
        attachment = services.attachment_add(
            actor=org.alice, lead=lead, kind="deck_link", title="演示文稿", url="https://example.com/deck"
        )
        assert (attachment.url, attachment.file.name) == ("https://example.com/deck", "")

    @pytest.mark.parametrize(
        ("name", "content", "field"),
        [
            ("evil.exe", b"MZ\x90\x00", "file"),
            ("fake.pdf", b"<html>not a pdf</html>", "file"),
            ("empty.pdf", b"", "file"),
        ],
    )
    def test_a_file_of_another_type_is_refused_naming_the_field(self, org, lead, name, content, field):
        upload = SimpleUploadedFile(name, content, content_type="application/pdf")
        with pytest.raises(ValidationError) as exc:
            services.attachment_add(actor=org.alice, lead=lead, kind="proposal", file=upload)
        assert field_of(exc) == [field]

    def test_a_file_over_the_size_limit_is_refused(self, org, lead, monkeypatch):
        monkeypatch.setattr(services, "ATTACHMENT_MAX_BYTES", 100)
        with pytest.raises(ValidationError) as exc:
            services.attachment_add(actor=org.alice, lead=lead, kind="proposal", file=pdf_upload())
        assert "larger than" in exc.value.message_dict["file"][0]

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"kind": "proposal", "url": "ftp://example.com/x"}, "url"),
            ({"kind": "proposal", "url": "javascript:alert(1)"}, "url"),
            ({"kind": "proposal"}, "file"),
            ({"kind": "提案!", "url": "https://example.com"}, "kind"),
            ({"kind": "", "url": "https://example.com"}, "kind"),
        ],
    )
    def test_bad_links_and_kinds_are_refused_naming_the_field(self, org, lead, kwargs, field):
        with pytest.raises(ValidationError) as exc:
            services.attachment_add(actor=org.alice, lead=lead, **kwargs)
        assert field_of(exc) == [field]

    def test_removing_keeps_the_row_closes_the_link_and_is_audited(self, org, lead):
        attachment = services.attachment_add(actor=org.alice, lead=lead, kind="proposal", file=pdf_upload())
        document = services.document_share(actor=org.alice, attachment=attachment)
        services.attachment_remove(actor=org.alice, attachment=attachment, reason="旧版本")
        attachment.refresh_from_db()
        assert attachment.removed_at == T0
        assert selectors.document_by_token(document.token) is None
        assert AuditEntry.objects.get(action="attachment.remove").reason == "旧版本"

    def test_a_product_manager_who_sees_the_lead_cannot_attach(self, org, lead):
        with pytest.raises(PermissionDenied):
            services.attachment_add(actor=org.pm, lead=lead, kind="proposal", url="https://example.com")


class TestTrackedDocuments:
    @pytest.fixture
    def document(self, org, lead):
        attachment = services.attachment_add(actor=org.alice, lead=lead, kind="proposal", file=pdf_upload())
        return services.document_share(actor=org.alice, attachment=attachment)

    def test_sharing_twice_answers_the_same_secret_link(self, org, document):
        again = services.document_share(actor=org.alice, attachment=document.attachment)
        assert again.token == document.token
        assert len(document.token) == 43

    def test_a_revoked_link_is_dead_and_sharing_again_gives_a_new_secret(self, org, document):
        old = document.token
        services.document_revoke(actor=org.alice, document=document)
        assert selectors.document_by_token(old) is None
        renewed = services.document_share(actor=org.alice, attachment=document.attachment)
        assert renewed.pk == document.pk and renewed.token != old
        assert selectors.document_by_token(renewed.token) is not None

    def test_beats_add_visible_time_up_to_the_wall_clock(self, document):
        view = services.document_view_open(document=document)
        clock.advance(dt.timedelta(seconds=5))
        services.document_view_beat(token=document.token, view_key=view.view_key, visible_ms=5000)
        clock.advance(dt.timedelta(seconds=5))
        # a forged client claims an hour: only the 5 s that passed count
        services.document_view_beat(token=document.token, view_key=view.view_key, visible_ms=3_600_000)
        view.refresh_from_db()
        assert (view.visible_ms, view.seconds) == (10_000, 10)

    def test_a_beat_after_a_long_silence_adds_at_most_two_intervals(self, document):
        view = services.document_view_open(document=document)
        clock.advance(dt.timedelta(hours=2))
        services.document_view_beat(token=document.token, view_key=view.view_key, visible_ms=7_200_000)
        view.refresh_from_db()
        assert view.seconds == 2 * 5

    def test_hidden_time_is_not_counted_when_the_client_does_not_report_it(self, document):
        view = services.document_view_open(document=document)
        clock.advance(dt.timedelta(seconds=3))
        services.document_view_beat(token=document.token, view_key=view.view_key, visible_ms=3000)
        clock.advance(dt.timedelta(seconds=8))  # the tab was hidden: total visible time unchanged
        services.document_view_beat(token=document.token, view_key=view.view_key, visible_ms=3400)
        view.refresh_from_db()
        assert view.visible_ms == 3400

    def test_a_smaller_total_or_a_replayed_beat_adds_nothing(self, document):
        view = services.document_view_open(document=document)
        clock.advance(dt.timedelta(seconds=4))
        services.document_view_beat(token=document.token, view_key=view.view_key, visible_ms=4000)
        clock.advance(dt.timedelta(seconds=4))
        services.document_view_beat(token=document.token, view_key=view.view_key, visible_ms=1000)
        services.document_view_beat(token=document.token, view_key=view.view_key, visible_ms=4000)
        view.refresh_from_db()
        assert view.visible_ms == 4000

    def test_a_beat_with_the_wrong_token_or_on_a_revoked_link_is_ignored(self, org, document):
        view = services.document_view_open(document=document)
        clock.advance(dt.timedelta(seconds=4))
        assert services.document_view_beat(token="x" * 43, view_key=view.view_key, visible_ms=4000) is None
        services.document_revoke(actor=org.alice, document=document)
        assert (
            services.document_view_beat(token=document.token, view_key=view.view_key, visible_ms=4000) is None
        )
        assert DocumentView.objects.get().visible_ms == 0

    def test_the_stats_count_openings_and_seconds(self, document):
        for seconds in (3, 4):
            view = services.document_view_open(document=document)
            clock.advance(dt.timedelta(seconds=seconds))
            services.document_view_beat(
                token=document.token, view_key=view.view_key, visible_ms=seconds * 1000
            )
        [stats] = selectors.tracked_documents_of(lead=document.attachment.lead)
        assert (stats.opens, stats.seconds) == (2, 7)


class TestTouches:
    def test_an_outbound_call_and_a_customer_initiated_message(self, org, lead):
        call = services.touch_record(
            actor=org.alice, lead=lead, kind="call", direction="outbound", responded=None
        )
        message = services.touch_record(
            actor=org.alice, lead=lead, kind="message", direction="inbound", customer_initiated=True
        )
        assert (call.responded, call.at) == (None, T0)
        assert message.customer_initiated is True
        assert [t.pk for t in selectors.touches_of(lead=lead)] == [message.pk, call.pk]

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"kind": "fax", "direction": "outbound"}, "kind"),
            ({"kind": "call", "direction": "sideways"}, "direction"),
            ({"kind": "call", "direction": "inbound", "responded": True}, "responded"),
            ({"kind": "call", "direction": "outbound", "customer_initiated": True}, "customer_initiated"),
            ({"kind": "call", "direction": "outbound", "at": T0 + dt.timedelta(hours=1)}, "at"),
            ({"kind": "call", "direction": "outbound", "at": dt.datetime(1, 1, 1, tzinfo=dt.UTC)}, "at"),
        ],
    )
    def test_bad_input_is_refused_naming_the_field(self, org, lead, kwargs, field):
        with pytest.raises(ValidationError) as exc:
            services.touch_record(actor=org.alice, lead=lead, **kwargs)
        assert field_of(exc) == [field]

    def test_a_contact_of_another_customer_is_refused(self, org, lead):
        stranger = contact_make(customer=customer_make())
        with pytest.raises(ValidationError) as exc:
            services.touch_record(
                actor=org.alice, lead=lead, kind="call", direction="outbound", contact=stranger
            )
        assert field_of(exc) == ["contact_id"]

    def test_the_response_is_recorded_later_once_and_audited(self, org, lead):
        touch = services.touch_record(actor=org.alice, lead=lead, kind="email", direction="outbound")
        clock.advance(dt.timedelta(days=1))
        services.touch_response_record(actor=org.alice, touch=touch, responded=True)
        touch.refresh_from_db()
        assert (touch.responded, touch.responded_recorded_at) == (True, T0 + dt.timedelta(days=1))
        assert AuditEntry.objects.filter(action="touch.responded", target_id=str(touch.pk)).count() == 1
        services.touch_response_record(actor=org.alice, touch=touch, responded=True)  # replay: same answer
        with pytest.raises(ValidationError) as exc:
            services.touch_response_record(actor=org.alice, touch=touch, responded=False)
        assert field_of(exc) == ["responded"]
        assert Touch.objects.count() == 1


class TestMeetings:
    def test_scheduled_then_attended_with_minutes_is_audited(self, org, lead):
        meeting = services.meeting_schedule(
            actor=org.alice, lead=lead, title="方案演示", scheduled_at=T0 + dt.timedelta(days=1)
        )
        clock.advance(dt.timedelta(days=1, hours=2))
        services.meeting_update(
            actor=org.alice,
            meeting=meeting,
            status="attended",
            attended_minutes=45,
            minutes_text="客户关注交付周期",
        )
        meeting.refresh_from_db()
        assert (meeting.status, meeting.attended_minutes) == ("attended", 45)
        entry = AuditEntry.objects.get(action="meeting.update")
        assert entry.before["status"] == "scheduled" and entry.after["status"] == "attended"

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"status": "attended"}, "attended_minutes"),
            ({"status": "no_show", "attended_minutes": 30}, "attended_minutes"),
            ({"status": "bogus"}, "status"),
            ({"title": "  "}, "title"),
        ],
    )
    def test_bad_outcomes_are_refused_naming_the_field(self, org, lead, changes, field):
        meeting = services.meeting_schedule(actor=org.alice, lead=lead, title="会", scheduled_at=T0)
        with pytest.raises(ValidationError) as exc:
            services.meeting_update(actor=org.alice, meeting=meeting, **changes)
        assert field_of(exc) == [field]

    def test_an_outcome_before_the_meeting_starts_is_refused(self, org, lead):
        meeting = services.meeting_schedule(
            actor=org.alice, lead=lead, title="会", scheduled_at=T0 + dt.timedelta(days=3)
        )
        with pytest.raises(ValidationError) as exc:
            services.meeting_update(actor=org.alice, meeting=meeting, status=MeetingStatus.NO_SHOW)
        assert field_of(exc) == ["status"]

    def test_a_replayed_push_updates_the_same_meeting(self, org, lead):
        first, created = services.meeting_push(
            actor=org.alice,
            lead=lead,
            system="tencent_meeting",
            external_id="m-1",
            title="线上演示",
            scheduled_at=T0,
        )
        again, created_again = services.meeting_push(
            actor=org.alice,
            lead=lead,
            system="tencent_meeting",
            external_id="m-1",
            title="线上演示",
            scheduled_at=T0,
        )
        later, _ = services.meeting_push(
            actor=org.alice,
            lead=lead,
            system="tencent_meeting",
            external_id="m-1",
            status="attended",
            attended_minutes=50,
        )
        assert (created, created_again) == (True, False)
        assert first.pk == again.pk == later.pk
        assert Meeting.objects.count() == 1
        assert (later.status, later.attended_minutes) == ("attended", 50)
        assert AuditEntry.objects.filter(action="meeting.update").count() == 1  # the replay changed nothing

    def test_a_push_for_another_lead_is_refused(self, org, lead):
        services.meeting_push(
            actor=org.alice, lead=lead, system="zoom", external_id="9", title="演示", scheduled_at=T0
        )
        other = lead_make(owner=org.alice)
        with pytest.raises(ValidationError) as exc:
            services.meeting_push(
                actor=org.alice, lead=other, system="zoom", external_id="9", title="演示", scheduled_at=T0
            )
        assert field_of(exc) == ["lead_id"]


class TestBudget:
    def test_the_latest_milestone_is_current(self, org, lead):
        services.budget_milestone_record(actor=org.alice, lead=lead, stage="unknown")
        clock.advance(dt.timedelta(days=2))
        services.budget_milestone_record(
            actor=org.alice,
            lead=lead,
            stage="range_known",
            amount_low=Decimal("100000"),
            amount_high=Decimal("300000"),
        )
        engagement = selectors.lead_engagement(lead=lead)
        assert engagement.budget_current.stage == "range_known"
        assert engagement.budget_step == 2

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"stage": "maybe"}, "stage"),
            ({"stage": "range_known"}, "amount_low"),
            ({"stage": "confirmed", "amount_low": Decimal(5), "amount_high": Decimal(1)}, "amount_high"),
            ({"stage": "confirmed", "amount_low": Decimal(-1)}, "amount_low"),
        ],
    )
    def test_bad_input_is_refused_naming_the_field(self, org, lead, kwargs, field):
        with pytest.raises(ValidationError) as exc:
            services.budget_milestone_record(actor=org.alice, lead=lead, **kwargs)
        assert field_of(exc) == [field]


class TestHealthHook:
    def test_each_new_fact_moves_the_lead_health_score(self, org, lead, django_capture_on_commit_callbacks):
        # given: a lead whose health has been computed from no facts at all
        from salesloop.health.models import LeadHealth

        def raw(signal: str) -> float:
            breakdown = LeadHealth.objects.get(lead_id=lead.pk).breakdown
            return next(s["raw"] for s in breakdown["signals"] if s["signal"] == signal)

        # when/then: each fact is scored as soon as it is recorded
        services.touch_record(actor=org.alice, lead=lead, kind="call", direction="outbound")
        assert raw("contact_frequency") > 0
        services.budget_milestone_record(actor=org.alice, lead=lead, stage="confirmed")
        assert raw("budget_progress") == 2
        meeting = services.meeting_schedule(actor=org.alice, lead=lead, title="会", scheduled_at=T0)
        clock.advance(dt.timedelta(hours=2))
        services.meeting_update(actor=org.alice, meeting=meeting, status="attended", attended_minutes=50)
        assert raw("meeting_attendance") > 0
        attachment = services.attachment_add(actor=org.alice, lead=lead, kind="proposal", file=pdf_upload())
        document = services.document_share(actor=org.alice, attachment=attachment)
        view = services.document_view_open(document=document)
        clock.advance(dt.timedelta(seconds=5))
        with django_capture_on_commit_callbacks(execute=True):
            services.document_view_beat(token=document.token, view_key=view.view_key, visible_ms=5000)
        assert raw("material_viewing") > 0
        lead.refresh_from_db()
        assert lead.health_score == LeadHealth.objects.get(lead_id=lead.pk).score > 0
