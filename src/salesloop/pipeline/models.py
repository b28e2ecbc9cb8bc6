from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from salesloop.core import clock
from salesloop.core.models import BaseModel


class Pipeline(BaseModel):
    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        verbose_name = _("Pipeline")
        verbose_name_plural = _("Pipelines")
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="one_default_pipeline"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Stage(BaseModel):
    """One step of a pipeline (SPEC C2.1). `requirements` are the entry gates of C2.2."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=40, help_text="Chinese name shown by default")
    name_en = models.CharField(max_length=60, blank=True, default="")
    position = models.PositiveSmallIntegerField()
    requirements = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["pipeline_id", "position"]
        verbose_name = _("Stage")
        verbose_name_plural = _("Stages")
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "code"], name="stage_code_unique"),
            models.UniqueConstraint(fields=["pipeline", "position"], name="stage_position_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    def label(self, language: str) -> str:
        return self.name_en if language.startswith("en") and self.name_en else self.name


class StageMove(models.Model):
    """A fact: a lead went from one stage/status to another (SPEC C2.3). Never edited."""

    lead = models.ForeignKey("crm.Lead", on_delete=models.CASCADE, related_name="moves", db_index=False)
    # Stage FKs are not indexed: moves are read per lead, and stages are never deleted (PROTECT).
    from_stage = models.ForeignKey(
        Stage, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    to_stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="+", db_index=False)
    from_status = models.CharField(max_length=10, blank=True, default="")
    to_status = models.CharField(max_length=10)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=clock.now)
    note = models.TextField(blank=True, default="")
    reason = models.CharField(max_length=200, blank=True, default="")
    filled = models.JSONField(default=dict, blank=True)
    explanation = models.JSONField()

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["lead", "at", "id"], name="move_lead_at_idx")]
        verbose_name = _("Stage move")
        verbose_name_plural = _("Stage moves")

    def __str__(self) -> str:
        return f"lead {self.lead_id}: {self.from_stage_id} → {self.to_stage_id}"
