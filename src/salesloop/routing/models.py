"""Lead routing (SPEC C8): versioned rule sets, rep profiles, the round-robin state and the
assignments themselves — appended facts, each with the trace that explains it."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from salesloop.core import clock
from salesloop.core.models import BaseModel, JSONTextField


class RuleSetStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")  # in force from effective_at (scheduled until then)
    ROLLED_BACK = "rolled_back", _("Rolled back")
    CANCELLED = "cancelled", _("Cancelled")  # withdrawn before it took effect


class RuleSet(BaseModel):
    """One version of the organisation's routing rules (C8.3). The definition is the documented
    JSON (routing.ruleset); it never changes once the version leaves draft. The version in force at
    a moment is the published one with the latest effective time not after it."""

    version = models.PositiveIntegerField(unique=True)
    name = models.CharField(max_length=120)
    definition = models.JSONField()
    status = models.CharField(max_length=12, choices=RuleSetStatus.choices, default=RuleSetStatus.DRAFT)
    based_on = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    effective_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    publish_note = models.TextField(blank=True, default="")
    override_reason = models.TextField(
        blank=True, default="", help_text="why it was published although the sandbox found it worse"
    )
    report = models.ForeignKey(
        "routing.RoutingReport",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="the simulation report sent to the committee with the publication",
    )
    rolled_back_at = models.DateTimeField(null=True, blank=True)
    rolled_back_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rollback_reason = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-version"]
        verbose_name = _("Routing rule set")
        verbose_name_plural = _("Routing rule sets")
        indexes = [models.Index(fields=["status", "effective_at"], name="ruleset_status_eff_idx")]

    def __str__(self) -> str:
        return f"v{self.version} {self.name}"


class RoutingPolicy(models.Model):
    """The organisation's routing settings (one row): notice period, the sales committee, and the
    sandbox's limits. Changed by admins through routing.services.policy_update (audited)."""

    notice_hours = models.PositiveIntegerField(default=48)
    committee = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    region_match_margin = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.050"),
        help_text="a candidate whose region match rate is lower by more than this needs an override",
    )
    province_share_limit = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.400"),
        help_text="flag a rep who receives more than this share of one province's leads",
    )
    replay_days = models.PositiveIntegerField(default=90)
    ab_share = models.DecimalField(max_digits=4, decimal_places=3, default=Decimal("0.100"))

    class Meta:
        verbose_name = _("Routing policy")
        verbose_name_plural = _("Routing policy")

    def __str__(self) -> str:
        return "routing policy"


class RepProfile(BaseModel):
    """What routing knows of a rep beyond their account: specialties (C8.5), capacity caps and
    working hours. A rep without a profile has no tags, no personal caps and works any time."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rep_profile"
    )
    specialties = models.JSONField(default=list, blank=True, help_text='industries, e.g. ["制造业"]')
    max_open_leads = models.PositiveIntegerField(null=True, blank=True)
    max_new_per_day = models.PositiveIntegerField(null=True, blank=True)
    work_days = models.JSONField(default=list, blank=True, help_text="ISO weekdays 1-7; empty: every day")
    work_start = models.TimeField(null=True, blank=True)
    work_end = models.TimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("Rep routing profile")
        verbose_name_plural = _("Rep routing profiles")

    def __str__(self) -> str:
        return f"profile of {self.user}"


class Leave(BaseModel):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="leaves")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["-starts_at"]
        verbose_name = _("Leave")
        verbose_name_plural = _("Leaves")
        indexes = [models.Index(fields=["ends_at", "starts_at"], name="leave_window_idx")]

    def __str__(self) -> str:
        return f"{self.user} {self.starts_at:%Y-%m-%d}–{self.ends_at:%Y-%m-%d}"


class RoundRobinState(models.Model):
    """Where a rule's rotation stands (C8 item 3): one row per rule id, locked while a lead is
    routed, so simultaneous arrivals take turns exactly as one at a time would. `counts` holds
    leads given per rep (weighted distribution reads it), `served` the turn each rep was last
    given a lead at (the next turn goes to the eligible rep served longest ago)."""

    key = models.CharField(max_length=120, unique=True)
    last_user_id = models.BigIntegerField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    served = models.JSONField(
        default=dict, blank=True, help_text="rep id → the turn they were last served at"
    )
    turns = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        verbose_name = _("Round-robin state")
        verbose_name_plural = _("Round-robin states")

    def __str__(self) -> str:
        return self.key


class AssignmentMethod(models.TextChoices):
    RULE = "rule", _("By a rule")
    FALLBACK = "fallback", _("By the fallback rule")
    POOL = "pool", _("Nobody eligible: left in the pool")
    MANUAL = "manual", _("By hand")


class Assignment(models.Model):
    """One assignment decision (C8.2): appended, never edited. The lead's owner and assigned_at are
    its projection. `explanation` is the full trace (explanation kind `assignment`)."""

    lead = models.ForeignKey("crm.Lead", on_delete=models.CASCADE, related_name="assignments", db_index=False)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    previous_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # assignment_previous_owner_idx
    )
    method = models.CharField(max_length=10, choices=AssignmentMethod.choices)
    ruleset = models.ForeignKey(RuleSet, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    rule_id = models.CharField(max_length=60, blank=True, default="")
    strategy = models.CharField(max_length=20, blank=True, default="")
    arm = models.CharField(max_length=10, blank=True, default="", help_text="A/B arm: current or candidate")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True, default="")
    explanation = JSONTextField()  # `json` on PostgreSQL: written in bulk, read whole
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("Assignment")
        verbose_name_plural = _("Assignments")
        indexes = [
            models.Index(fields=["lead", "-id"], name="assignment_lead_idx"),
            models.Index(fields=["assignee", "created_at"], name="assignment_assignee_day_idx"),
            # A first assignment has no previous owner: only reassignments are indexed (what
            # deleting a user looks up), not an entry per routed lead.
            models.Index(
                fields=["previous_owner"],
                condition=models.Q(previous_owner__isnull=False),
                name="assignment_previous_owner_idx",
            ),
            # A live A/B test's report reads the assignments of its window by arm.
            models.Index(
                fields=["arm", "created_at"], condition=~models.Q(arm=""), name="assignment_ab_arm_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"lead {self.lead_id} → {self.assignee_id}"


class OpenLeads(models.Model):
    """How many open leads each user owns — what routing's caps and least-loaded strategy weigh for
    every batch it routes. Kept by the database itself: triggers on the leads' table
    (routing/loads.py) add and take away as leads are inserted, change owner or status, or are
    deleted, whoever writes them (services, imports, bulk statements). Counting the open leads
    instead read every open lead of the roster per batch: ~5 ms at 7,000 on PostgreSQL, growing
    with the book."""

    user_id = models.BigIntegerField(primary_key=True)
    open_leads = models.IntegerField(default=0)

    class Meta:
        verbose_name = _("Open leads of a user")

    def __str__(self) -> str:
        return f"{self.user_id}: {self.open_leads}"


class AssignedInQuarter(models.Model):
    """How many assignments name a user as assignee, per quarter hour of their `created_at`
    (`quarter`: whole seconds since 1970 // 900) — kept by triggers on the assignments' table, as
    OpenLeads is. A day starts on a quarter hour in every time zone, so the leads a rep received
    since their day began (the new-per-day cap) are a sum of at most 96 rows, whatever the day's
    volume and whatever the organisation's time zone."""

    user_id = models.BigIntegerField()
    quarter = models.BigIntegerField()
    assigned = models.IntegerField(default=0)

    class Meta:
        verbose_name = _("Assignments of a user in a quarter hour")
        constraints = [models.UniqueConstraint(fields=["user_id", "quarter"], name="assigned_quarter_once")]

    def __str__(self) -> str:
        return f"{self.user_id} @ {self.quarter}: {self.assigned}"


class ReportKind(models.TextChoices):
    REPLAY = "replay", _("Replay of past leads")
    AB = "ab", _("Live A/B test")


class ReportStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class RoutingReport(models.Model):
    """A sandbox run (C8.4): the fairness of a candidate rule set against the current one, over a
    replay of past leads or over a live A/B test. `metrics` holds both sides; `findings` says in
    plain words what got worse."""

    ruleset = models.ForeignKey(RuleSet, on_delete=models.CASCADE, related_name="reports")
    baseline = models.ForeignKey(RuleSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=10, choices=ReportKind.choices)
    status = models.CharField(max_length=10, choices=ReportStatus.choices, default=ReportStatus.PENDING)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    share = models.DecimalField(max_digits=4, decimal_places=3, null=True, blank=True, help_text="A/B share")
    leads_total = models.PositiveIntegerField(default=0)
    leads_done = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    findings = models.JSONField(default=list, blank=True)
    region_match_drop = models.FloatField(null=True, blank=True)
    worse = models.BooleanField(default=False, help_text="region match worse than the policy's margin allows")
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=clock.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True, help_text="an A/B test stopped early")

    class Meta:
        ordering = ["-id"]
        verbose_name = _("Routing report")
        verbose_name_plural = _("Routing reports")
        indexes = [
            models.Index(fields=["ruleset", "kind", "-id"], name="report_ruleset_idx"),
            models.Index(fields=["kind", "window_end"], name="report_ab_window_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} report of {self.ruleset}"
