"""Funnel rollups (SPEC C5): numbers derived from `pipeline.StageMove` facts (DESIGN.md rule 1).

Two pairs of small tables, maintained by `insights.funnel_rollup.funnel_move_apply` whenever a
move is appended, and rebuilt from the facts by `salesloop insights_rebuild` with the same result:
FunnelDay / FunnelOpen keyed by (Shanghai day, stage code, region, source) for the organisation and
the regions, and FunnelOwnerDay / FunnelOwnerOpen keyed by the lead's current owner instead of its
region, for reps, teams and the cross view by rep. A lead's region and source never change; its
owner does (routing, hand-overs), and `funnel_owners_sync` then moves the lead's rows from the old
owner to the new (docs/insights.md, "Scopes").

`region_id` and `owner_id` are plain integers (0 = none), not foreign keys: a unique key with a
NULL in it never conflicts, and the upsert (`INSERT … ON CONFLICT … DO UPDATE`) needs it to.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class FunnelCounters(models.Model):
    """The counters of a funnel day row (FunnelDay by region, FunnelOwnerDay by owner): stays that
    began (entries), how many of those later moved forward (converted, counted on the day the stay
    began), exits (moves out of an open stay: forward, backward or closed in place) with their
    dwell, and wins with their cycle time."""

    span = models.CharField(
        max_length=1, default="d", help_text="d: one day; w: the week starting on `day` (the sum of its days)"
    )
    day = models.DateField(help_text="the day, or the Monday of the week for a week row")
    stage_code = models.CharField(max_length=40)
    source = models.CharField(max_length=20)
    entries = models.IntegerField(default=0)
    converted = models.IntegerField(default=0)
    exits = models.IntegerField(default=0)
    exits_forward = models.IntegerField(default=0)
    exits_backward = models.IntegerField(default=0)
    dwell_seconds = models.BigIntegerField(default=0, help_text="sum over the exits of the day")
    forward_dwell_seconds = models.BigIntegerField(default=0, help_text="sum over the forward exits")
    wins = models.IntegerField(default=0)
    win_cycle_seconds = models.BigIntegerField(default=0, help_text="sum of arrival → won over the wins")
    # Week rows (span "w") repeat the day rows summed by week: a 90-day period reads ~13 weeks and
    # the odd days at its ends instead of 90 days — 3-6 times fewer rows (docs/insights.md).
    # + DWELL_BUCKETS columns `dwell_hNN`: the exits of the day per dwell bucket (docs/insights.md,
    # "Medians"), added below. Columns rather than rows: a histogram as rows multiplied the rows a
    # 90-day organisation query sums by ~40 (1M+ rows at a million leads); as columns it adds
    # nothing to the number of rows read.

    class Meta:
        abstract = True


DWELL_BUCKETS = 52  # insights.funnel_rollup.dwell_bucket: 0-29 by day, 30-41 by 5 days, 42-50 by 30, 51

for _bucket in range(DWELL_BUCKETS):
    FunnelCounters.add_to_class(f"dwell_h{_bucket:02d}", models.IntegerField(default=0))


class FunnelDay(FunnelCounters):
    """Per Shanghai day (or week), stage, region and source: the organisation's and the regions'
    heat map."""

    region_id = models.IntegerField(default=0)

    class Meta:
        verbose_name = _("Funnel day")
        verbose_name_plural = _("Funnel days")
        constraints = [
            models.UniqueConstraint(
                fields=["span", "day", "stage_code", "region_id", "source"], name="funnel_day_key"
            )
        ]
        # Every funnel read is a range of days and weeks, with or without a region (the unique key
        # covers the organisation-wide read; this one a region's).
        indexes = [models.Index(fields=["region_id", "span", "day"], name="funnel_day_region_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.stage_code} region {self.region_id} {self.source}"


class FunnelOwnerDay(FunnelCounters):
    """The same counters per Shanghai day (or week), stage, *current owner* of the lead and source:
    the rep's heat map, the team's (its members' rows) and the cross view by rep. A lead's whole
    history counts for its current owner, so a hand-over moves the lead's rows from the old owner to
    the new (`insights.funnel_rollup.funnel_owners_sync`); `owner_id` 0 = nobody."""

    owner_id = models.IntegerField(default=0)

    class Meta:
        verbose_name = _("Funnel day by owner")
        verbose_name_plural = _("Funnel days by owner")
        constraints = [
            # owner first: every read is one owner's (or a team's owners') range of days
            models.UniqueConstraint(
                fields=["owner_id", "span", "day", "stage_code", "source"], name="funnel_owner_day_key"
            )
        ]
        # the organisation's cross view by rep reads every owner's rows of a range of days
        indexes = [models.Index(fields=["span", "day"], name="funnel_owner_day_span_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.stage_code} owner {self.owner_id} {self.source}"


class FunnelPile(models.Model):
    """Open leads in a stage now ("piled up"), with the sum of their stage-entry times (epoch
    seconds) so that their mean age is one subtraction away."""

    stage_code = models.CharField(max_length=40)
    source = models.CharField(max_length=20)
    open_leads = models.IntegerField(default=0)
    entered_epoch_sum = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class FunnelOpen(FunnelPile):
    """The pile-up per stage, region and source."""

    region_id = models.IntegerField(default=0)

    class Meta:
        verbose_name = _("Funnel pile-up")
        verbose_name_plural = _("Funnel pile-ups")
        constraints = [
            models.UniqueConstraint(fields=["stage_code", "region_id", "source"], name="funnel_open_key")
        ]

    def __str__(self) -> str:
        return f"{self.stage_code} region {self.region_id} {self.source}: {self.open_leads} open"


class FunnelOwnerOpen(FunnelPile):
    """The pile-up per stage, current owner and source (see FunnelOwnerDay)."""

    owner_id = models.IntegerField(default=0)

    class Meta:
        verbose_name = _("Funnel pile-up by owner")
        verbose_name_plural = _("Funnel pile-ups by owner")
        constraints = [
            models.UniqueConstraint(fields=["owner_id", "stage_code", "source"], name="funnel_owner_open_key")
        ]

    def __str__(self) -> str:
        return f"{self.stage_code} owner {self.owner_id} {self.source}: {self.open_leads} open"
