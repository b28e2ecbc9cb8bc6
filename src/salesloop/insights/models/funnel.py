"""Funnel rollups (SPEC C5): numbers derived from `pipeline.StageMove` facts (DESIGN.md rule 1).

Two small tables, maintained by `insights.funnel_rollup.funnel_move_apply` whenever a move is
appended, and rebuilt from the facts by `salesloop insights_rebuild` with the same result. They are
keyed by (Shanghai day, stage code, region, source) — not by owner: a lead's owner changes without
a stage move (routing, hand-overs), its region and source do not; rep and team funnels are computed
from the facts of their own leads (docs/insights.md, "Scopes").

`region_id` is a plain integer (0 = no region), not a foreign key: a unique key with a NULL in it
never conflicts, and the upsert (`INSERT … ON CONFLICT … DO UPDATE`) needs it to.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class FunnelDay(models.Model):
    """Per Shanghai day, stage, region and source: stays that began (entries), how many of those
    later moved forward (converted, counted on the day the stay began), exits (moves out of an open
    stay: forward, backward or closed in place) with their dwell, and wins with their cycle time."""

    day = models.DateField(help_text="the day, or the Monday of the week for a week row")
    span = models.CharField(
        max_length=1, default="d", help_text="d: one day; w: the week starting on `day` (the sum of its days)"
    )
    stage_code = models.CharField(max_length=40)
    region_id = models.IntegerField(default=0)
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


DWELL_BUCKETS = 52  # insights.funnel_rollup.dwell_bucket: 0-29 by day, 30-41 by 5 days, 42-50 by 30, 51

for _bucket in range(DWELL_BUCKETS):
    FunnelDay.add_to_class(f"dwell_h{_bucket:02d}", models.IntegerField(default=0))


class FunnelOpen(models.Model):
    """Open leads in each stage now ("piled up"), with the sum of their stage-entry times (epoch
    seconds) so that their mean age is one subtraction away."""

    stage_code = models.CharField(max_length=40)
    region_id = models.IntegerField(default=0)
    source = models.CharField(max_length=20)
    open_leads = models.IntegerField(default=0)
    entered_epoch_sum = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("Funnel pile-up")
        verbose_name_plural = _("Funnel pile-ups")
        constraints = [
            models.UniqueConstraint(fields=["stage_code", "region_id", "source"], name="funnel_open_key")
        ]

    def __str__(self) -> str:
        return f"{self.stage_code} region {self.region_id} {self.source}: {self.open_leads} open"
