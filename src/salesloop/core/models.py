from __future__ import annotations

from django.conf import settings
from django.db import models

from salesloop.core import clock


class JSONTextField(models.JSONField):
    """A JSON value kept on PostgreSQL as `json` — its text, checked — rather than `jsonb`, which
    the server parses into a binary tree on the way in: for large documents written in bulk, read
    back whole and never searched inside, such as a routing trace (~1 KB, one per routed lead; as
    `jsonb`, parsing them held up a million-row import's assignments by ~5%, measured). Anything a
    query must look inside stays a `JSONField`. Elsewhere (SQLite) it is a `JSONField`."""

    def db_type(self, connection):  # type: ignore[no-untyped-def]
        if connection.vendor == "postgresql":
            return "json"
        return super().db_type(connection)

    def from_db_value(self, value, expression, connection):  # type: ignore[no-untyped-def]
        if value is not None and not isinstance(value, str):
            return value  # psycopg decodes `json` itself (Django has it leave `jsonb` as text)
        return super().from_db_value(value, expression, connection)


class BaseModel(models.Model):
    """created/updated times for every record; `created_at` may be set explicitly (imports, demo)."""

    created_at = models.DateTimeField(default=clock.now, db_index=False, editable=False)
    updated_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        # Time bookkeeping only, no business logic: every write stamps updated_at from our clock.
        self.updated_at = clock.now()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "updated_at"}
        super().save(*args, **kwargs)


class AuditEntry(models.Model):
    """Who changed what, when, with the state before and after. Appended, never edited."""

    at = models.DateTimeField(default=clock.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=80)
    target_type = models.CharField(max_length=80)
    target_id = models.CharField(max_length=64)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["target_type", "target_id", "-at"], name="audit_target_idx"),
            models.Index(fields=["actor", "-at"], name="audit_actor_idx"),
        ]
        verbose_name = "审计记录"
        verbose_name_plural = "审计记录"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.target_type}#{self.target_id}"


class PersonalDataAccess(models.Model):
    """Every unmasked view of personal data and every export (SPEC 'across everything', PIPL)."""

    class Kind(models.TextChoices):
        VIEW = "view", "查看"
        EXPORT = "export", "导出"

    at = models.DateTimeField(default=clock.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    subject_type = models.CharField(max_length=80)
    subject_id = models.CharField(max_length=64)
    fields = models.JSONField(default=list)
    channel = models.CharField(max_length=20, help_text="page, api, export")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["subject_type", "subject_id"], name="pda_subject_idx")]
        verbose_name = "个人信息访问记录"
        verbose_name_plural = "个人信息访问记录"

    def __str__(self) -> str:
        return f"{self.actor_id} {self.kind} {self.subject_type}#{self.subject_id}"
