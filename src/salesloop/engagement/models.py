"""Engagement facts (SPEC C3.4): what the customer and the rep actually did. Appended, never edited
(DESIGN.md rule 1), except a document view's running seconds, a meeting's outcome and an outbound
touch's response (unknown → known, once), which are updated by their services as the view goes on,
the meeting takes place or the answer comes in (docs/engagement.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from salesloop.core import clock


class TouchKind(models.TextChoices):
    CALL = "call", _("Call")
    MESSAGE = "message", _("Message")
    EMAIL = "email", _("E-mail")
    VISIT = "visit", _("Visit")


class TouchDirection(models.TextChoices):
    OUTBOUND = "outbound", _("Outbound")
    INBOUND = "inbound", _("Inbound")


class Touch(models.Model):
    """One outreach by the rep (outbound) or one contact by the customer (inbound)."""

    lead = models.ForeignKey("crm.Lead", on_delete=models.CASCADE, related_name="touches", db_index=False)
    contact = models.ForeignKey(
        "crm.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=10, choices=TouchKind.choices)
    direction = models.CharField(max_length=10, choices=TouchDirection.choices)
    # outbound: did the customer respond (None = not known yet); inbound: always a response
    responded = models.BooleanField(null=True, blank=True)
    # when an outbound touch's response became known, if it was recorded after the touch (the one
    # change a touch allows: unknown → known, see services.touch_response_record)
    responded_recorded_at = models.DateTimeField(null=True, blank=True)
    # inbound contact the customer started on their own, not a reply (its own health signal)
    customer_initiated = models.BooleanField(default=False)
    at = models.DateTimeField(default=clock.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["lead", "at"], name="touch_lead_at_idx")]
        verbose_name = _("Engagement touch")
        verbose_name_plural = _("Engagement touches")

    def __str__(self) -> str:
        return f"{self.direction} {self.kind} on lead {self.lead_id}"


class TrackedDocument(models.Model):
    """A lead's attachment shared through a secret link; opening it needs no login."""

    attachment = models.OneToOneField("crm.Attachment", on_delete=models.CASCADE, related_name="tracked")
    lead = models.ForeignKey("crm.Lead", on_delete=models.CASCADE, related_name="+", db_index=False)
    token = models.CharField(max_length=43, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=clock.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["lead"], name="tracked_doc_lead_idx")]
        verbose_name = _("Tracked document")
        verbose_name_plural = _("Tracked documents")

    def __str__(self) -> str:
        return f"tracked {self.attachment_id}"


class DocumentView(models.Model):
    """One opening of a tracked document; `seconds` counts only time the page was visible."""

    document = models.ForeignKey(TrackedDocument, on_delete=models.CASCADE, related_name="views")
    lead = models.ForeignKey("crm.Lead", on_delete=models.CASCADE, related_name="+", db_index=False)
    view_key = models.CharField(max_length=43, unique=True, help_text="secret the viewer page beats with")
    opened_at = models.DateTimeField(default=clock.now)
    last_beat_at = models.DateTimeField(default=clock.now)
    seconds = models.PositiveIntegerField(default=0)
    # the exact visible time; `seconds` is its whole seconds (beats add milliseconds, capped by the
    # wall-clock time since the previous beat: services.document_view_beat)
    visible_ms = models.PositiveBigIntegerField(default=0)
    user_agent = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["opened_at", "id"]
        indexes = [models.Index(fields=["lead", "opened_at"], name="docview_lead_at_idx")]
        verbose_name = _("Document view")
        verbose_name_plural = _("Document views")

    def __str__(self) -> str:
        return f"view of {self.document_id}: {self.seconds}s"


class MeetingStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Meeting scheduled")
    ATTENDED = "attended", _("Attended")
    NO_SHOW = "no_show", _("Customer did not attend")
    CANCELLED = "cancelled", _("Meeting cancelled")


class Meeting(models.Model):
    lead = models.ForeignKey("crm.Lead", on_delete=models.CASCADE, related_name="meetings", db_index=False)
    title = models.CharField(max_length=200)
    scheduled_at = models.DateTimeField()
    planned_minutes = models.PositiveSmallIntegerField(default=60)
    status = models.CharField(max_length=10, choices=MeetingStatus.choices, default=MeetingStatus.SCHEDULED)
    attended_minutes = models.PositiveSmallIntegerField(null=True, blank=True)
    minutes_text = models.TextField(blank=True, default="", help_text="the meeting's minutes (纪要)")
    online = models.BooleanField(default=False)
    # (system, external_id) make a meeting system's pushes idempotent
    system = models.CharField(max_length=30, blank=True, default="")
    external_id = models.CharField(max_length=100, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=clock.now, editable=False)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["scheduled_at", "id"]
        indexes = [models.Index(fields=["lead", "scheduled_at"], name="meeting_lead_at_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["system", "external_id"],
                condition=~models.Q(external_id=""),
                name="meeting_external_unique",
            )
        ]
        verbose_name = _("Meeting")
        verbose_name_plural = _("Meetings")

    def __str__(self) -> str:
        return self.title


class BudgetStage(models.TextChoices):
    UNKNOWN = "unknown", _("Budget unknown")
    RANGE_KNOWN = "range_known", _("Budget range known")
    CONFIRMED = "confirmed", _("Budget confirmed")
    APPROVED = "approved", _("Budget approved")


class BudgetMilestone(models.Model):
    """The lead's budget reached a stage (预算确认进度); the latest one is current."""

    lead = models.ForeignKey("crm.Lead", on_delete=models.CASCADE, related_name="+", db_index=False)
    stage = models.CharField(max_length=12, choices=BudgetStage.choices)
    amount_low = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    amount_high = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    at = models.DateTimeField(default=clock.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["lead", "at"], name="budget_lead_at_idx")]
        verbose_name = _("Budget milestone")
        verbose_name_plural = _("Budget milestones")

    def __str__(self) -> str:
        return f"{self.stage} on lead {self.lead_id}"


# Check-ins (SPEC C4) live in their own module to keep this one short; Django finds them through here.
from salesloop.engagement.checkin_models import (  # noqa: E402, F401
    Checkin,
    CheckinActionType,
    CheckinEvidence,
    CheckinReminder,
    CheckinReminderSetting,
    CheckinResult,
    EvidenceKind,
    EvidenceUpload,
)

# What OCR read on an attachment lives in its own module (issue 6 item 3); imported here so Django
# counts the model as the engagement app's.
from salesloop.engagement.ocr.models import EvidenceText, OcrStatus  # noqa: E402, F401
