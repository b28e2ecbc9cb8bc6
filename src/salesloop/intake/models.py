from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from salesloop.core import clock
from salesloop.core.models import BaseModel
from salesloop.crm.models import Channel

# The channels a source can be: every lead channel except the two no source delivers (imports have
# their own jobs; "manual" is a person typing). One list of channels, so a lead's `source` is always
# its source's kind.
SourceKind = models.TextChoices(
    "SourceKind",
    [(c.name, (c.value, c.label)) for c in Channel if c not in (Channel.IMPORT, Channel.MANUAL)],
)


def _slug() -> str:
    return secrets.token_urlsafe(9).replace("_", "x").replace("-", "y").lower()


class Source(BaseModel):
    """A configured channel (SPEC C1.1): its own endpoint (`/hooks/<slug>`), secret and mapping."""

    kind = models.CharField(max_length=20, choices=SourceKind.choices)
    name = models.CharField(max_length=80)
    slug = models.SlugField(max_length=40, unique=True, default=_slug)
    secret = models.CharField(
        max_length=200, blank=True, default="", help_text="HMAC secret of signed channels"
    )
    wecom_token = models.CharField(max_length=100, blank=True, default="")
    wecom_aes_key = models.CharField(
        max_length=43, blank=True, default="", help_text="EncodingAESKey (43 chars)"
    )
    wecom_corp_id = models.CharField(max_length=64, blank=True, default="")
    field_mapping = models.JSONField(default=dict, blank=True, help_text="our field -> path in the payload")
    pipeline = models.ForeignKey(
        "pipeline.Pipeline", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    default_campaign = models.CharField(max_length=120, blank=True, default="")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("Source")
        verbose_name_plural = _("Sources")

    def __str__(self) -> str:
        return self.name


class EventStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    CREATED = "created", _("New lead")
    TOUCH = "touch", _("Touch on an existing lead")
    FAILED = "failed", _("Failed")
    DRAFT = "draft", _("Draft awaiting confirmation")
    IGNORED = "ignored", _("Ignored")


class InboundEvent(models.Model):
    """A raw inbound payload, stored verbatim before any processing (DESIGN.md rule 5).

    The body is never edited; processing sets the outcome. Idempotency: one event per
    (source, the channel's own id) — a replay finds the first and answers with its outcome.
    """

    # Indexed by event_source_time_idx (source, received_at) and the unique (source, external_id):
    # a third index on the source alone only cost every event an insert.
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="events", db_index=False)
    external_id = models.CharField(max_length=128, blank=True, default="")
    received_at = models.DateTimeField(default=clock.now)
    body = models.TextField()
    headers = models.JSONField(default=dict, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=EventStatus.choices, default=EventStatus.RECEIVED)
    error = models.TextField(blank=True, default="")
    lead = models.ForeignKey(
        "crm.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound_events"
    )
    campaign = models.CharField(max_length=120, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    normalised = models.JSONField(null=True, blank=True, help_text="what the adapter read from the payload")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=~models.Q(external_id=""),
                name="event_once_per_source",
            )
        ]
        indexes = [
            # id ascending, read backwards for the newest first: see crm.Lead's indexes
            models.Index(fields=["status", "id"], name="event_status_idx"),
            models.Index(fields=["source", "received_at"], name="event_source_time_idx"),
            # the web form's per-address rate limit: only events that came with an address (an
            # imported row has none)
            models.Index(
                fields=["remote_addr", "received_at"],
                condition=models.Q(remote_addr__isnull=False),
                name="event_remote_time_idx",
            ),
        ]
        verbose_name = _("Inbound event")
        verbose_name_plural = _("Inbound events")

    def __str__(self) -> str:
        return f"{self.source_id}/{self.external_id or self.pk} {self.status}"


class MergeSuggestion(models.Model):
    """Two open leads that look like one person (same company, similar name), for a person to judge."""

    class Status(models.TextChoices):
        OPEN = "open", _("Awaiting review")
        MERGED = "merged", _("Merged")
        DISMISSED = "dismissed", _("Dismissed")

    lead = models.ForeignKey("crm.Lead", on_delete=models.CASCADE, related_name="+")
    candidate = models.ForeignKey("crm.Lead", on_delete=models.CASCADE, related_name="+")
    score = models.DecimalField(max_digits=4, decimal_places=3)
    explanation = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["lead", "candidate"], name="merge_suggestion_once")]

    def __str__(self) -> str:
        return f"{self.lead_id} ~ {self.candidate_id}"


from salesloop.intake.imports.models import ImportJob, ImportRejectedRow  # noqa: E402,F401 -- models of the imports package
