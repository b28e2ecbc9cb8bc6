from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from salesloop.core import clock
from salesloop.core.models import BaseModel
from salesloop.core.roles import Role


class Region(BaseModel):
    """A sales region (华东, 华南 …): a set of provinces with a manager."""

    code = models.SlugField(max_length=20, unique=True)
    name = models.CharField(max_length=40, unique=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("Region")
        verbose_name_plural = _("Regions")

    def __str__(self) -> str:
        return self.name


class Province(models.Model):
    """A province-level division, keyed by its GB/T 2260 code (44 = 广东)."""

    code = models.CharField(max_length=2, primary_key=True)
    name = models.CharField(max_length=20, unique=True)
    region = models.ForeignKey(
        Region, null=True, blank=True, on_delete=models.SET_NULL, related_name="provinces"
    )

    class Meta:
        ordering = ["code"]
        verbose_name = _("Province")
        verbose_name_plural = _("Provinces")

    def __str__(self) -> str:
        return self.name


class Team(BaseModel):
    name = models.CharField(max_length=80, unique=True)
    region = models.ForeignKey(Region, null=True, blank=True, on_delete=models.PROTECT, related_name="teams")

    class Meta:
        ordering = ["name"]
        verbose_name = _("Team")
        verbose_name_plural = _("Teams")

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.REP)
    region = models.ForeignKey(
        Region, null=True, blank=True, on_delete=models.PROTECT, related_name="members"
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="members")
    display_name = models.CharField(max_length=80, blank=True, default="")

    class Meta:
        verbose_name = _("User")
        verbose_name_plural = _("Users")
        indexes = [models.Index(fields=["role", "region"], name="user_role_region_idx")]

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    @property
    def label(self) -> str:
        return str(self)


class ApiToken(models.Model):
    """A bearer token. Only its SHA-256 is stored; the token itself is shown once at creation."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=80, default="cli")
    prefix = models.CharField(max_length=12, help_text="first characters, to recognise a token in lists")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=clock.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"
