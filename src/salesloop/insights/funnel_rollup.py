"""The funnel rollups (SPEC C5): what each stage move adds to them, applied as it is appended
(`funnel_move_apply`, called by `pipeline.services.stage_move_record`) or replayed from the facts
(`funnel_rollup_rebuild`, `salesloop insights_rebuild`). Both go through `Rollup.add_move`, so the
two cannot disagree; a test replays a history both ways and compares the tables.

Definitions (docs/insights.md has worked examples):
- a *stay* in a stage begins with a move into it from another stage (or the entry into the
  pipeline) — the rule of `Lead.stage_entered_at`; closing or reopening in place does not begin one;
- an *entry* is the beginning of a stay, counted on its Shanghai day;
- an *exit* is a move out of an open stay: forward, backward, or closed in place (won / lost); its
  dwell is its time minus the stay's beginning, counted on the exit's day;
- a stay is *converted* when it ends with a forward move; counted on the day the stay began, so
  "conversion of the leads that entered in the period" is converted ÷ entries over the period;
- a *win* adds arrival → won (`Lead.created_at` to the move) to the won day's cycle sum.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models.fields.json import KT

from salesloop.core import clock
from salesloop.insights.models import DWELL_BUCKETS, FunnelDay, FunnelOpen

OPEN, WON = "open", "won"
DAY_SECONDS = 86_400

# FunnelDay's counters, in this order everywhere (tuples, SQL columns, sums).
DAY_COUNTERS = (
    "entries",
    "converted",
    "exits",
    "exits_forward",
    "exits_backward",
    "dwell_seconds",
    "forward_dwell_seconds",
    "wins",
    "win_cycle_seconds",
    *(f"dwell_h{bucket:02d}" for bucket in range(DWELL_BUCKETS)),
)
ENTRIES, CONVERTED, EXITS, FORWARD, BACKWARD, DWELL, FORWARD_DWELL, WINS, WIN_CYCLE = range(9)
HISTOGRAM = 9  # the first dwell bucket's index in a row of DAY_COUNTERS

# Dwell histogram buckets (docs/insights.md, "Medians"): (first bucket, lowest day, width in days).
_BUCKET_BANDS = ((0, 0, 1), (30, 30, 5), (42, 90, 30))
LAST_BUCKET, LAST_BUCKET_LOW, LAST_BUCKET_WIDTH = 51, 360, 360


def dwell_bucket(seconds: int) -> int:
    """1-day buckets up to 30 days, 5-day buckets up to 90, 30-day buckets up to 360, then one."""
    days = max(seconds, 0) / DAY_SECONDS
    if days < 30:
        return int(days)
    if days < 90:
        return 30 + int((days - 30) // 5)
    if days < 360:
        return 42 + int((days - 90) // 30)
    return LAST_BUCKET


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """(lowest, highest) dwell days of a bucket."""
    if bucket >= LAST_BUCKET:
        return LAST_BUCKET_LOW, LAST_BUCKET_LOW + LAST_BUCKET_WIDTH
    for first, low, width in reversed(_BUCKET_BANDS):
        if bucket >= first:
            start = low + (bucket - first) * width
            return start, start + width
    return 0, 1


def local_day(moment: dt.datetime) -> dt.date:
    """The organisation's calendar day of a moment (DESIGN.md rule 6)."""
    return moment.astimezone(clock.org_tz()).date()


def week_start(day: dt.date) -> dt.date:
    """The Monday of the day's week."""
    return day - dt.timedelta(days=day.weekday())


def epoch(moment: dt.datetime) -> int:
    return int(moment.timestamp())


DayKey = tuple[dt.date, str, int, str]  # day, stage code, region id (0: none), source
OpenKey = tuple[str, int, str]


@dataclass
class Rollup:
    """Deltas to the two tables, accumulated in memory."""

    days: defaultdict[DayKey, list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0] * len(DAY_COUNTERS))
    )
    open: defaultdict[OpenKey, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    # looked up once: a replay calls add_move for every move of a book of leads
    tz: Any = field(default_factory=clock.org_tz)

    def add_move(
        self,
        *,
        from_code: str | None,
        to_code: str,
        from_status: str,
        to_status: str,
        direction: str | None,
        at: dt.datetime,
        stay_started_at: dt.datetime | None,
        lead_created_at: dt.datetime,
        region_id: int | None,
        source: str,
    ) -> None:
        """What one move adds. `stay_started_at` is when the lead's current stay began, before
        this move (None for the entry into the pipeline)."""
        region = region_id or 0
        tz = self.tz
        day = at.astimezone(tz).date()
        begins_stay = from_code is None or from_code != to_code
        if from_code is not None and from_status == OPEN and stay_started_at is not None:
            # an exit from an open stay
            dwell = max(epoch(at) - epoch(stay_started_at), 0)
            row = self.days[(day, from_code, region, source)]
            row[EXITS] += 1
            row[DWELL] += dwell
            row[HISTOGRAM + dwell_bucket(dwell)] += 1
            if direction == "forward":
                row[FORWARD] += 1
                row[FORWARD_DWELL] += dwell
                self.days[(stay_started_at.astimezone(tz).date(), from_code, region, source)][CONVERTED] += 1
            elif direction == "backward":
                row[BACKWARD] += 1
            pile = self.open[(from_code, region, source)]
            pile[0] -= 1
            pile[1] -= epoch(stay_started_at)
        if begins_stay:
            self.days[(day, to_code, region, source)][ENTRIES] += 1
        if to_status == OPEN:
            entered = at if begins_stay or stay_started_at is None else stay_started_at
            pile = self.open[(to_code, region, source)]
            pile[0] += 1
            pile[1] += epoch(entered)
        if to_status == WON and from_status == OPEN:
            row = self.days[(day, to_code, region, source)]
            row[WINS] += 1
            row[WIN_CYCLE] += max(epoch(at) - epoch(lead_created_at), 0)

    def add_history(self, lead: LeadFacts, moves: Iterable[MoveFacts]) -> None:
        """Replay one lead's moves, oldest first, tracking when each stay began."""
        stay_started_at: dt.datetime | None = None
        for move in moves:
            self.add_move(
                from_code=move.from_code,
                to_code=move.to_code,
                from_status=move.from_status,
                to_status=move.to_status,
                direction=move.direction,
                at=move.at,
                stay_started_at=stay_started_at,
                lead_created_at=lead.created_at,
                region_id=lead.region_id,
                source=lead.source,
            )
            if move.from_code is None or move.from_code != move.to_code:
                stay_started_at = move.at

    def write(self) -> None:
        """Add the deltas to the tables: one upsert each (`INSERT … ON CONFLICT DO UPDATE`,
        which SQLite and PostgreSQL both speak), so concurrent moves add up instead of racing."""
        weeks: defaultdict[DayKey, list[int]] = defaultdict(lambda: [0] * len(DAY_COUNTERS))
        for (day, *rest), values in self.days.items():
            week = weeks[(week_start(day), *rest)]  # type: ignore[index]
            for i, value in enumerate(values):
                week[i] += value
        day_rows = [("d", *key, *values) for key, values in self.days.items() if any(values)]
        day_rows += [("w", *key, *values) for key, values in weeks.items() if any(values)]
        open_rows = [(*key, *values) for key, values in self.open.items() if any(values)]
        with connection.cursor() as cursor:
            _upsert(
                cursor,
                FunnelDay,
                ["span", "day", "stage_code", "region_id", "source"],
                DAY_COUNTERS,
                day_rows,
            )
            _upsert(
                cursor,
                FunnelOpen,
                ["stage_code", "region_id", "source"],
                ("open_leads", "entered_epoch_sum"),
                open_rows,
            )


def _upsert(cursor: Any, model: Any, keys: list[str], counters: Iterable[str], rows: list[Any]) -> None:
    if not rows:
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = [*keys, *counters]
    adds = ", ".join(f"{quote(c)} = {table}.{quote(c)} + excluded.{quote(c)}" for c in counters)
    sql = (
        f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608 -- names from model meta
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO UPDATE SET {adds}"
    )
    cursor.executemany(sql, rows)


@dataclass(frozen=True)
class LeadFacts:
    id: int
    region_id: int | None
    source: str
    created_at: dt.datetime
    owner_id: int | None = None


@dataclass(frozen=True)
class MoveFacts:
    lead_id: int
    from_code: str | None
    to_code: str
    from_status: str
    to_status: str
    direction: str | None
    at: dt.datetime


def funnel_move_apply(*, lead: Any, move: Any, from_code: str | None, direction: str | None) -> None:
    """C5: add one appended move to the rollups. Called inside the move's transaction by
    `stage_move_record`, with the lead row as it stood *before* the move (its `stage_entered_at` is
    the beginning of the stay the move ends)."""
    rollup = Rollup()
    rollup.add_move(
        from_code=from_code,
        to_code=move.to_stage.code,
        from_status=move.from_status,
        to_status=move.to_status,
        direction=direction,
        at=move.at,
        stay_started_at=lead.stage_entered_at if from_code is not None else None,
        lead_created_at=lead.created_at,
        region_id=lead.region_id,
        source=lead.source,
    )
    rollup.write()


# ---- replaying the facts ---------------------------------------------------------------------------


def stage_codes() -> dict[int, str]:
    from salesloop.pipeline.models import Stage

    return dict(Stage.objects.values_list("id", "code"))


def moves_of(moves_filter: dict[str, Any], codes: dict[int, str]) -> Iterator[MoveFacts]:
    """The moves of some leads (`moves_filter`: lookups on StageMove), by lead then time. Only
    the explanation's `direction` is read from its JSON, by the database."""
    from salesloop.pipeline.models import StageMove

    rows = list(
        StageMove.objects.filter(**moves_filter)
        .order_by()  # sorted here: asked of the database, an ORDER BY lead_id steers PostgreSQL to
        # walk the whole (lead, at, id) index in order instead of looking up the few leads asked for
        .values_list(
            "lead_id",
            "at",
            "id",
            "from_stage_id",
            "to_stage_id",
            "from_status",
            "to_status",
            KT("explanation__direction"),
        )
    )
    rows.sort(key=lambda row: (row[0], row[1], row[2]))
    for lead_id, at, _id, from_id, to_id, from_status, to_status, direction in rows:
        yield MoveFacts(
            lead_id, codes[from_id] if from_id else None, codes[to_id], from_status, to_status, direction, at
        )


def rollup_of_leads(leads: dict[int, LeadFacts], moves_filter: dict[str, Any]) -> Rollup:
    """Replay the moves of `leads` (selected by `moves_filter`) into one Rollup."""
    codes = stage_codes()
    rollup = Rollup()
    current: list[MoveFacts] = []
    current_id: int | None = None
    for move in moves_of(moves_filter, codes):
        if move.lead_id != current_id:
            if current_id in leads:
                rollup.add_history(leads[current_id], current)
            current, current_id = [], move.lead_id
        current.append(move)
    if current_id in leads:
        rollup.add_history(leads[current_id], current)
    return rollup


def lead_facts(leads: Any) -> dict[int, LeadFacts]:
    return {
        row[0]: LeadFacts(*row)
        for row in leads.values_list("id", "region_id", "source", "created_at", "owner_id")
    }


REBUILD_CHUNK = 20_000


@transaction.atomic
def funnel_rollup_rebuild(*, progress: Any = None) -> int:
    """Empty the rollups and replay every stage move into them (DESIGN.md rule 1); the result
    equals what the moves added one by one. Returns the number of leads replayed."""
    for model in (FunnelDay, FunnelOpen):
        model.objects.all().delete()
    return funnel_rollup_add_leads(progress=progress)


def funnel_rollup_add_leads(*, first_id: int = 0, last_id: int | None = None, progress: Any = None) -> int:
    """Replay the moves of the leads with ids in [first_id, last_id] and add them to the rollups:
    for leads written in bulk without the services (the demo generator). Leads are read in id
    ranges so memory stays flat at millions."""
    from salesloop.crm.models import Lead

    leads_in = Lead.objects.filter(id__gte=first_id)
    if last_id is not None:
        leads_in = leads_in.filter(id__lte=last_id)
    last = leads_in.order_by("-id").values_list("id", flat=True).first() or 0
    total = leads_in.count()
    done, start = 0, first_id
    while start <= last:
        end = min(start + REBUILD_CHUNK, last + 1)
        leads = lead_facts(Lead.objects.filter(id__gte=start, id__lt=end))
        if leads:
            rollup_of_leads(leads, {"lead_id__gte": start, "lead_id__lt": end}).write()
        done += len(leads)
        start = end
        if progress is not None:
            progress(done, total)
    return done


def funnel_entries_apply(*, leads: Iterable[Any]) -> None:
    """C5: leads appended in bulk (intake bursts), each with its entry move at `created_at` into
    its current stage — the same additions `funnel_move_apply` makes for one entry move."""
    rollup = Rollup()
    for lead in leads:
        rollup.add_move(
            from_code=None,
            to_code=lead.stage.code,
            from_status="",
            to_status=lead.status,
            direction="enter",
            at=lead.created_at,
            stay_started_at=None,
            lead_created_at=lead.created_at,
            region_id=lead.region_id,
            source=lead.source,
        )
    rollup.write()


def funnel_import_entries_apply(
    *, stage_id: int, source: str, entries: Iterable[tuple[int | None, Any]]
) -> None:
    """C5: leads written by an import chunk (intake.imports.engine), each (region id, arrival) open
    in the stage `stage_id` — as `funnel_move_apply` would add their entry moves. Two statements
    per chunk whatever its size."""
    from salesloop.pipeline.models import Stage

    code = Stage.objects.filter(pk=stage_id).values_list("code", flat=True).get()
    rollup = Rollup()
    for region_id, at in entries:
        rollup.add_move(
            from_code=None,
            to_code=code,
            from_status="",
            to_status=OPEN,
            direction="enter",
            at=at,
            stay_started_at=None,
            lead_created_at=at,
            region_id=region_id,
            source=source,
        )
    rollup.write()
