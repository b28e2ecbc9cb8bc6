"""In-app notifications, alerts (SPEC C9 alerts) and their delivery to WeCom / DingTalk group bots
through an outbox (docs/alerts.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from salesloop.core import clock


class Notification(models.Model):
    """An in-app message to one user (the bell)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, default="")
    link = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(default=clock.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "read_at", "-id"], name="notification_inbox_idx")]

    def __str__(self) -> str:
        return self.title


class Alert(models.Model):
    """A condition that needs a response (an indicator in warning, a lead gone red). Raised once per
    entry into the condition (`key` identifies the condition; at most one open alert per key, a
    partial unique index) and cleared when the condition ends. Appended: a new entry is a new row.
    `explanation` is the source's structured reason, stored as it was when raised."""

    kind = models.CharField(max_length=40)
    key = models.CharField(max_length=200)
    region = models.ForeignKey(
        "accounts.Region", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recipients = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="AlertRecipient", blank=True, related_name="alerts"
    )
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, default="")
    explanation = models.JSONField(default=dict)
    link = models.CharField(max_length=500, blank=True, default="")
    suggested_response = models.TextField(blank=True, default="")
    raised_at = models.DateTimeField(default=clock.now)
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=Q(cleared_at__isnull=True), name="alert_one_open_per_key"
            )
        ]
        indexes = [
            models.Index(fields=["region", "-id"], name="alert_region_idx"),
            models.Index(fields=["team", "-id"], name="alert_team_idx"),
            models.Index(fields=["key", "-id"], name="alert_key_idx"),
        ]
        verbose_name = _("Alert")
        verbose_name_plural = _("Alerts")

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None


class AlertRecipient(models.Model):
    """Who an alert is addressed to. Unique on (user, alert): that index also answers "my alerts",
    probed per alert by the scoped list (notify.selectors)."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="recipient_rows")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "alert"], name="alertrecipient_once")]

    def __str__(self) -> str:
        return f"alert {self.alert_id} → user {self.user_id}"


class BotKind(models.TextChoices):
    WECOM = "wecom", _("WeCom group robot")
    DINGTALK = "dingtalk", _("DingTalk custom robot")


class BotChannel(models.Model):
    """A group robot's webhook that receives the alerts of a region or a team (or, with neither,
    of the whole organisation). Configuration: every change goes through notify.channels and is
    audited. `secret` is DingTalk's signing secret (`SEC…`); it is never shown back."""

    kind = models.CharField(max_length=10, choices=BotKind.choices)
    name = models.CharField(max_length=80)
    webhook_url = models.CharField(max_length=500)
    secret = models.CharField(max_length=200, blank=True, default="")
    region = models.ForeignKey(
        "accounts.Region", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    enabled = models.BooleanField(default=True)
    alert_kinds = models.JSONField(default=list, blank=True, help_text="alert kinds received; empty = all")
    created_at = models.DateTimeField(default=clock.now, editable=False)
    updated_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(region__isnull=True) | Q(team__isnull=True), name="botchannel_region_or_team"
            )
        ]
        verbose_name = _("Bot channel")
        verbose_name_plural = _("Bot channels")

    def __str__(self) -> str:
        return self.name


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    # The request may have reached the robot but no answer says so (docs/alerts.md, "at most
    # once"): never retried automatically, shown to people with a retry button.
    UNCERTAIN = "uncertain", _("Unknown — check the group")


class BotDelivery(models.Model):
    """The outbox: one row per (alert, channel), so an alert reaches a group at most once. The
    message is rendered when the row is written, so every attempt sends the same text. The robots
    have no idempotency key, so a row whose request may have arrived without an answer saying so
    becomes `uncertain` and waits for a person instead of being sent again (notify.outbox)."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(BotChannel, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    message = models.JSONField(help_text="{'title': ..., 'text': ...} in markdown")
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=clock.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    response_body = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=clock.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["alert", "channel"], name="botdelivery_once_per_channel")
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="botdelivery_due_idx"),
            models.Index(fields=["channel", "-id"], name="botdelivery_channel_idx"),
        ]
        verbose_name = _("Bot delivery")
        verbose_name_plural = _("Bot deliveries")

    def __str__(self) -> str:
        return f"alert {self.alert_id} → {self.channel_id}: {self.status}"
