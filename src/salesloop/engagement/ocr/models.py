"""What OCR read on an attachment (SPEC C3.4, issue 6 item 3). Imported by `engagement.models`, so the
model belongs to the engagement app.

One row per OCR-able attachment (image or PDF), created `pending` in the same transaction as the
attachment; the task fills it. Everything on it is derived from the file: reading the same file again
gives the same row (the engine and the extraction are deterministic), so a re-read replaces it.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from salesloop.core import clock


class OcrStatus(models.TextChoices):
    PENDING = "pending", _("Reading the text…")
    DONE = "done", _("Text read")
    FAILED = "failed", _("Text could not be read")
    SKIPPED = "skipped", _("Nothing to read")


class EvidenceText(models.Model):
    attachment = models.OneToOneField(
        "crm.Attachment", on_delete=models.CASCADE, related_name="ocr", primary_key=True
    )
    # The lead, copied from the attachment: the search scopes by it without a join.
    lead = models.ForeignKey("crm.Lead", on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.SlugField(max_length=40, help_text="the attachment's kind, copied (signature_page …)")
    status = models.CharField(max_length=10, choices=OcrStatus.choices, default=OcrStatus.PENDING)
    reason = models.CharField(
        max_length=500, blank=True, default="", help_text="why it failed or was skipped"
    )
    engine = models.CharField(max_length=40, blank=True, default="")
    pages = models.PositiveSmallIntegerField(default=0)
    text = models.TextField(blank=True, default="")
    # NFKC, lower case, no whitespace: what `evidence_search` matches a normalised query against.
    search_text = models.TextField(blank=True, default="")
    # [{"page", "text", "box", "score"}] in reading order
    lines = models.JSONField(default=list, blank=True)
    # {"companies"|"amounts"|"dates"|"phones": [{"value", "text", "line", "confidence", …}]}
    facts = models.JSONField(default=dict, blank=True)
    # None: not a signature page; True/False: the verdict, its reasons in `signed_explanation`
    signed = models.BooleanField(null=True, blank=True)
    signed_explanation = models.JSONField(null=True, blank=True)
    company_mismatch = models.BooleanField(default=False)
    mismatch_explanation = models.JSONField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    seconds = models.FloatField(default=0, help_text="OCR and extraction time of the last read")
    created_at = models.DateTimeField(default=clock.now, editable=False)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The evidence search pages newest first within the leads a user sees.
            models.Index(fields=["lead", "-attachment"], name="evidence_text_lead_idx"),
            # The mismatch flag is a work queue for managers.
            models.Index(
                fields=["-attachment"],
                condition=models.Q(company_mismatch=True),
                name="evidence_mismatch_idx",
            ),
        ]
        verbose_name = _("Evidence text")
        verbose_name_plural = _("Evidence texts")

    def __str__(self) -> str:
        return f"OCR of attachment {self.attachment_id}: {self.status}"

    @property
    def mismatch_companies(self) -> str:
        """The companies a flagged page names, as the flag shows them: 「A」、「B」."""
        companies = (self.mismatch_explanation or {}).get("companies") or []
        return "、".join(f"「{c['name']}」" for c in companies)
