"""Customer health score (SPEC C3): the versioned scoring configuration and each lead's latest
score with its breakdown. `crm.Lead.health_score` and `crm.Customer.health_score` are projections
of these rows, kept by health.services / health.bulk."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from salesloop.core import clock


class HealthModelStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")


class HealthModel(models.Model):
    """One version of the scoring configuration (C3.2). Weights, windows and targets are keyed by
    signal (health.scoring.SIGNALS); a version never changes once published. The version in force
    at a moment is the published one with the latest effective time not after it."""

    version = models.PositiveIntegerField(unique=True)
    status = models.CharField(
        max_length=10, choices=HealthModelStatus.choices, default=HealthModelStatus.DRAFT
    )
    weights = models.JSONField(help_text="signal → weight (whole numbers summing to 100)")
    windows = models.JSONField(help_text="signal → days of facts that count")
    targets = models.JSONField(help_text="signal → the (decayed) amount that earns full marks")
    half_life_days = models.PositiveSmallIntegerField(default=14)
    red_threshold = models.PositiveSmallIntegerField(default=40)
    note = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=clock.now, editable=False)
    effective_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-version"]
        indexes = [models.Index(fields=["status", "effective_at"], name="healthmodel_status_eff_idx")]
        verbose_name = _("Health score model")
        verbose_name_plural = _("Health score models")

    def __str__(self) -> str:
        return f"health model v{self.version}"


class LeadHealth(models.Model):
    """A lead's latest health score (one row per lead) with the breakdown that explains it
    (explanation kind `health_score`) and its red state, so a crossing is notified once."""

    lead = models.OneToOneField("crm.Lead", on_delete=models.CASCADE, primary_key=True, related_name="+")
    score = models.PositiveSmallIntegerField()
    red = models.BooleanField(default=False)
    red_since = models.DateTimeField(null=True, blank=True)
    model_version = models.PositiveIntegerField()
    computed_at = models.DateTimeField()
    breakdown = models.JSONField()

    class Meta:
        verbose_name = _("Lead health")
        verbose_name_plural = _("Lead health")

    def __str__(self) -> str:
        return f"lead {self.lead_id}: {self.score}"
