"""Custom fields (SPEC C10.1): the organisation's own fields on leads and customers.

Values live on the record (`Lead.custom_fields`, `Customer.custom_fields`, keyed by `name`); a
definition says how to label, validate, filter and export them. Definitions are never deleted, only
archived, so old values stay readable; every change goes through `workspace.services` and is audited.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from salesloop.core.models import BaseModel


class CustomFieldEntity(models.TextChoices):
    LEAD = "lead", _("Lead")
    CUSTOMER = "customer", _("Customer")


class CustomFieldType(models.TextChoices):
    TEXT = "text", _("Text")
    LONG_TEXT = "long_text", _("Long text")
    NUMBER = "number", _("Number")
    MONEY = "money", _("Money")
    CHOICE = "choice", _("Choice")
    MULTI_CHOICE = "multi_choice", _("Multiple choice")
    DATE = "date", _("Date")
    LINK = "link", _("Link (URL)")
    FILE = "file", _("File")


class CustomField(BaseModel):
    entity = models.CharField(max_length=10, choices=CustomFieldEntity.choices)
    name = models.SlugField(
        max_length=40, help_text="the key in custom_fields and in the API; never changes once created"
    )
    label_zh = models.CharField(max_length=60)
    label_en = models.CharField(max_length=60, blank=True, default="")
    field_type = models.CharField(max_length=15, choices=CustomFieldType.choices)
    # [{"value": "a", "label_zh": "甲", "label_en": "A"}, ...] for choice and multi_choice
    choices = models.JSONField(default=list, blank=True)
    # {"required": bool, "min": n, "max": n, "max_length": n, "pattern": "regex"}: what applies per type
    validation = models.JSONField(default=dict, blank=True)
    help_text = models.CharField(max_length=200, blank=True, default="")
    position = models.PositiveSmallIntegerField(default=0)
    archived = models.BooleanField(default=False)

    class Meta:
        ordering = ["entity", "position", "id"]
        verbose_name = _("Custom field")
        verbose_name_plural = _("Custom fields")
        constraints = [
            models.UniqueConstraint(fields=["entity", "name"], name="custom_field_name_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.entity}.{self.name}"

    def label(self, language: str) -> str:
        return self.label_en if language.startswith("en") and self.label_en else self.label_zh
