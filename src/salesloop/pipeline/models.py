from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from salesloop.core import clock
from salesloop.core.models import BaseModel, JSONTextField


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


class VersionStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    LIVE = "live", _("In force")
    RETIRED = "retired", _("Retired")


class PipelineVersion(BaseModel):
    """One version of a pipeline's stages (SPEC C10.2, DESIGN.md rule 3).

    A draft is edited; publishing makes it the version in force (`live`) and retires the previous
    one. Published versions (live or retired) never change: leads keep pointing at the stage rows
    of the version they were moved under. At most one draft and one live version per pipeline."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=VersionStatus.choices, default=VersionStatus.DRAFT)
    name = models.CharField(max_length=80, help_text="the pipeline's name as of this version")
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    based_on = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["pipeline_id", "number"]
        verbose_name = _("Pipeline version")
        verbose_name_plural = _("Pipeline versions")
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "number"], name="pipeline_version_number_unique"),
            models.UniqueConstraint(
                fields=["pipeline"], condition=models.Q(status="draft"), name="pipeline_one_draft"
            ),
            models.UniqueConstraint(
                fields=["pipeline"], condition=models.Q(status="live"), name="pipeline_one_live"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.number}"

    @property
    def editable(self) -> bool:
        return self.status == VersionStatus.DRAFT


class Stage(BaseModel):
    """One step of a pipeline version (SPEC C2.1). `requirements` are the entry gates of C2.2
    (documented in docs/pipelines.md, checked by `pipeline.requirements`).

    `version` is the version the stage belongs to, for ever. `pipeline` is set only while that
    version is in force, so `Stage.objects.filter(pipeline=...)` always reads the stages in force;
    publishing moves it from the retired version's rows to the new ones."""

    version = models.ForeignKey(PipelineVersion, on_delete=models.CASCADE, related_name="stages")
    pipeline = models.ForeignKey(
        Pipeline,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="stages",
        help_text="set while the stage's version is in force",
    )
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=40, help_text="Chinese name shown by default")
    name_en = models.CharField(max_length=60, blank=True, default="")
    position = models.PositiveSmallIntegerField()
    requirements = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["version_id", "position"]
        verbose_name = _("Stage")
        verbose_name_plural = _("Stages")
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "code"], name="stage_code_unique"),
            models.UniqueConstraint(fields=["pipeline", "position"], name="stage_position_unique"),
            models.UniqueConstraint(fields=["version", "code"], name="stage_version_code_unique"),
            models.UniqueConstraint(fields=["version", "position"], name="stage_version_position_unique"),
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
    # `json` on PostgreSQL (JSONTextField): a move's record and explanation are written with it and
    # read whole; only the explanation's `direction` is read inside, by `->>`, which `json` has too.
    filled = JSONTextField(default=dict, blank=True)
    explanation = JSONTextField()

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["lead", "at", "id"], name="move_lead_at_idx")]
        verbose_name = _("Stage move")
        verbose_name_plural = _("Stage moves")

    def __str__(self) -> str:
        return f"lead {self.lead_id}: {self.from_stage_id} → {self.to_stage_id}"
