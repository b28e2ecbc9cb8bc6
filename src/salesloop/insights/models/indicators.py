"""Leading indicators (SPEC C9): the versioned thresholds, the evaluated values (facts of each
evaluation, with their inputs and explanation), and three small derived tables the indicators read
so a scope's value is computed live from the facts in a few indexed queries (docs/indicators.md).

The derived tables are projections of `pipeline.StageMove` and `engagement.Touch` (DESIGN.md rule
1): `insights.indicators.facts` rebuilds any lead's rows from its facts, the hooks in the pipeline
and engagement services call it where those facts are appended, and `salesloop
insights_facts_rebuild` rebuilds them all.

Their references to leads and touches are not foreign keys in the database (`db_constraint=False`):
the rows are written only by `facts`, from the lead or touch itself, in its own transaction, and a
deleted lead or touch still takes its rows with it (Django's delete collector cascades, as it does
with a constraint). On PostgreSQL each checked reference was a deferred trigger fired at commit —
a look-up and a row lock on the lead, two for every lead that arrives: ~5 s of the commits of a
million-row import, and part of every webhook batch's commit in the intake's turn (measured,
bench/README.md)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from salesloop.core import clock

# A span still running ends "never": a sentinel instead of NULL keeps `entered <= T < left` one
# index range (NULL would need an OR, which neither database turns into one range scan).
SPAN_OPEN_END = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)


class IndicatorThresholds(models.Model):
    """One version of the indicator thresholds (C9, DESIGN.md rule 3). Never edited: a change is a
    new version with the time it takes effect; the version in force at T is the one with the latest
    `effective_from` not after T. Defaults are the source's numbers (version 0 when none exists)."""

    version = models.PositiveIntegerField(unique=True)
    effective_from = models.DateTimeField()
    conversion_healthy = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.38"))
    conversion_warning = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.30"))
    conversion_window_days = models.PositiveSmallIntegerField(default=28)
    stall_healthy_days = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal("4.2"))
    stall_warning_days = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal("5.5"))
    stall_demo_share = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.45"))
    response_healthy = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.61"))
    response_warning = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.48"))
    response_drop_points = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.15"))
    response_drop_relative = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.25"))
    response_drop_min_touches = models.PositiveIntegerField(default=10)
    note = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["-effective_from", "-version"]
        indexes = [models.Index(fields=["effective_from", "version"], name="ind_thresholds_eff_idx")]
        verbose_name = _("Indicator thresholds")
        verbose_name_plural = _("Indicator thresholds")

    def __str__(self) -> str:
        return f"indicator thresholds v{self.version}"


class Indicator(models.TextChoices):
    CONVERSION = "conversion", _("Lead→opportunity conversion")
    STALL = "stall", _("Stage stall index")
    RESPONSE = "response", _("Customer response rate")


class Granularity(models.TextChoices):
    DAY = "day", _("Daily")
    WEEK = "week", _("Weekly")


class ScopeKind(models.TextChoices):
    ORG = "org", _("Whole organisation")
    REGION = "region", _("Region")
    TEAM = "team", _("Team")
    REP = "rep", _("Sales rep")


class IndicatorStatus(models.TextChoices):
    HEALTHY = "healthy", _("Healthy")
    WATCH = "watch", _("Watch")
    WARNING = "warning", _("Warning")
    NO_DATA = "no_data", _("No data")


class IndicatorValue(models.Model):
    """One evaluation of one indicator for one period and scope (C9). Re-evaluating the same period
    under the same thresholds version replaces the row (idempotent). `entered_warning` is true only
    when this period is in warning and the period before was not: one alert per entry."""

    indicator = models.CharField(max_length=12, choices=Indicator.choices)
    granularity = models.CharField(max_length=4, choices=Granularity.choices)
    period_start = models.DateField(help_text="first day of the period (Asia/Shanghai)")
    scope_kind = models.CharField(max_length=8, choices=ScopeKind.choices)
    scope_id = models.PositiveIntegerField(default=0, help_text="region, team or user id; 0 for org")
    thresholds_version = models.PositiveIntegerField()
    value = models.FloatField(null=True, blank=True, help_text="null when the denominator is 0")
    numerator = models.FloatField()
    denominator = models.PositiveIntegerField()
    status = models.CharField(max_length=8, choices=IndicatorStatus.choices)
    entered_warning = models.BooleanField(default=False)
    explanation = models.JSONField()
    drill_link = models.CharField(max_length=300)
    suggested_response = models.CharField(max_length=120, blank=True, default="")
    evaluated_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["indicator", "granularity", "scope_kind", "scope_id", "period_start"]
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "indicator",
                    "granularity",
                    "period_start",
                    "scope_kind",
                    "scope_id",
                    "thresholds_version",
                ],
                name="indicator_value_unique",
            )
        ]
        indexes = [
            models.Index(
                fields=["scope_kind", "scope_id", "granularity", "period_start"], name="ind_value_scope_idx"
            ),
            models.Index(fields=["entered_warning", "evaluated_at"], name="ind_value_entered_idx"),
        ]
        verbose_name = _("Indicator value")
        verbose_name_plural = _("Indicator values")

    def __str__(self) -> str:
        return f"{self.indicator} {self.granularity} {self.period_start} {self.scope_kind}:{self.scope_id}"

    # --- what an alert needs (hand-off to notify) ----------------------------------------------
    def alert_title(self) -> str:
        from salesloop.insights.indicators.alerts import alert_title

        return alert_title(self)

    def alert_body(self) -> str:
        from salesloop.insights.indicators.alerts import alert_body

        return alert_body(self)


class IndicatorLead(models.Model):
    """Per lead: when it arrived, its region, and when it first reached 需求确认 or a later stage
    (null: not yet). Feeds the conversion indicator."""

    lead = models.OneToOneField(
        "crm.Lead", on_delete=models.CASCADE, primary_key=True, related_name="+", db_constraint=False
    )
    region_id = models.IntegerField(null=True, blank=True)
    owner_id = models.IntegerField(null=True, blank=True, help_text="the lead's current owner")
    arrived_at = models.DateTimeField()
    needs_confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["arrived_at", "needs_confirmed_at"], name="ind_lead_arrived_idx"),
            models.Index(
                fields=["region_id", "arrived_at", "needs_confirmed_at"], name="ind_lead_region_idx"
            ),
            models.Index(fields=["owner_id", "arrived_at", "needs_confirmed_at"], name="ind_lead_owner_idx"),
        ]

    def __str__(self) -> str:
        return f"lead {self.lead_id} arrived {self.arrived_at:%Y-%m-%d}"


class IndicatorSpan(models.Model):
    """Per lead, one row per stay in a stage while open: [entered_at, left_at). A close (won/lost)
    ends the stay; `left_at` is SPAN_OPEN_END while it lasts. `rank` is the stage's place in the
    default pipeline (1 初筛 … 5 合同签署), mapped by code, else by position. Feeds the stall index
    and the stage of a touch."""

    lead = models.ForeignKey(
        "crm.Lead", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    region_id = models.IntegerField(null=True, blank=True)
    owner_id = models.IntegerField(null=True, blank=True, help_text="the lead's current owner")
    rank = models.PositiveSmallIntegerField()
    entered_at = models.DateTimeField()
    entered_s = models.BigIntegerField(help_text="entered_at as Unix seconds, so SQL can sum it")
    left_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["lead", "entered_at"], name="ind_span_lead_idx"),
            models.Index(fields=["owner_id", "left_at", "entered_at"], name="ind_span_owner_idx"),
        ]

    def __str__(self) -> str:
        return f"lead {self.lead_id} in rank {self.rank} from {self.entered_at:%Y-%m-%d}"


class IndicatorTouch(models.Model):
    """Per outbound touch: when, whether the customer responded, and the stage (rank) the lead was
    in at that moment (0 when it was closed). Feeds the response rate and its 报价谈判 part."""

    touch = models.OneToOneField(
        "engagement.Touch", on_delete=models.CASCADE, primary_key=True, related_name="+", db_constraint=False
    )
    lead = models.ForeignKey(
        "crm.Lead", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    region_id = models.IntegerField(null=True, blank=True)
    owner_id = models.IntegerField(null=True, blank=True, help_text="the lead's current owner")
    at = models.DateTimeField()
    rank = models.PositiveSmallIntegerField()
    responded = models.BooleanField()

    class Meta:
        indexes = [
            models.Index(fields=["owner_id", "at", "rank", "responded"], name="ind_touch_owner_idx"),
            models.Index(fields=["lead", "at"], name="ind_touch_lead_idx"),
        ]

    def __str__(self) -> str:
        return f"touch {self.touch_id} at rank {self.rank}"


# --- per-day ledgers for the organisation and the regions ---------------------------------------
# Values of any scope sum a few thousand day rows instead of every lead's: each row counts the leads
# (touches) of one local day, region, owner and stage. Kept by the same refresh as the per-lead rows
# (the leads' old contribution subtracted, the new one added) and rebuilt from them. Region and
# owner 0 = none (NULL would defeat the unique keys the upserts need).

NEVER = dt.date(9999, 12, 31)  # needs_day of a lead that has not reached 需求确认


class IndicatorArrivalDay(models.Model):
    """Leads that arrived on `arrival_day` in a region and first reached 需求确认 on `needs_day`."""

    arrival_day = models.DateField()
    needs_day = models.DateField()
    region_id = models.IntegerField()
    owner_id = models.IntegerField()
    leads = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["arrival_day", "needs_day", "region_id", "owner_id"], name="ind_arrival_day_unique"
            )
        ]
        indexes = [
            models.Index(fields=["region_id", "arrival_day"], name="ind_arrival_region_idx"),
            models.Index(fields=["owner_id", "arrival_day"], name="ind_arrival_owner_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.arrival_day} → {self.needs_day} region {self.region_id}: {self.leads}"


class IndicatorStallDay(models.Model):
    """Stays in a stage that began (+1, +entered_s) or ended (−1, −entered_s) on `day`: summing the
    days before T gives the open leads per stage at T and the sum of their entry times."""

    day = models.DateField()
    region_id = models.IntegerField()
    owner_id = models.IntegerField()
    rank = models.PositiveSmallIntegerField()
    leads = models.IntegerField()
    entered_s = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "region_id", "owner_id", "rank"], name="ind_stall_day_unique"
            )
        ]
        indexes = [
            models.Index(fields=["region_id", "day"], name="ind_stall_region_idx"),
            models.Index(fields=["owner_id", "day"], name="ind_stall_owner_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day} region {self.region_id} rank {self.rank}: {self.leads:+d}"


class IndicatorTouchDay(models.Model):
    """Outbound touches of a day, region and stage, and how many were answered."""

    day = models.DateField()
    region_id = models.IntegerField()
    owner_id = models.IntegerField()
    rank = models.PositiveSmallIntegerField()
    touches = models.IntegerField()
    responded = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "region_id", "owner_id", "rank"], name="ind_touch_day_unique"
            )
        ]
        indexes = [
            models.Index(fields=["region_id", "day"], name="ind_touchday_region_idx"),
            models.Index(fields=["owner_id", "day"], name="ind_touchday_owner_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day} region {self.region_id} rank {self.rank}: {self.responded}/{self.touches}"
