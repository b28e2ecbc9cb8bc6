"""The funnel rollups (SPEC C5): what each stage move adds to them, applied as it is appended
(`funnel_move_apply`, called by `insights.receivers` on `crm.signals.lead_stage_moved`) or replayed
from the facts (`funnel_rollup_rebuild`, `salesloop insights_rebuild`). Both go through
`Rollup.add_move`, so the two cannot disagree; a test replays a history both ways and compares the tables.

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
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import F, OuterRef, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce

from salesloop.core import clock
from salesloop.core.rows import statements_run
from salesloop.insights.models import DWELL_BUCKETS, FunnelDay, FunnelOpen, FunnelOwnerDay, FunnelOwnerOpen

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


DayKey = tuple[dt.date, str, int, str]  # day, stage code, region or owner id (0: none), source
OpenKey = tuple[str, int, str]


@dataclass
class Rollup:
    """Deltas to the tables, accumulated in memory: by region (`days`, `open`: FunnelDay,
    FunnelOpen) and by owner (`owner_days`, `owner_open`: FunnelOwnerDay, FunnelOwnerOpen).
    `regions` / `owners` say which pairs this rollup keeps; a hand-over touches the owner pair only.
    `sign` -1 takes the moves out again (the lead's rows under its old owner)."""

    days: defaultdict[DayKey, list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0] * len(DAY_COUNTERS))
    )
    open: defaultdict[OpenKey, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    owner_days: defaultdict[DayKey, list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0] * len(DAY_COUNTERS))
    )
    owner_open: defaultdict[OpenKey, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    regions: bool = True
    owners: bool = True
    sign: int = 1
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
        owner_id: int | None = None,
        times: int = 1,
    ) -> None:
        """What one move adds, to the region pair under the lead's region and to the owner pair
        under its owner. `stay_started_at` is when the lead's current stay began, before this move
        (None for the entry into the pipeline). `times`: as many moves alike, of as many leads."""
        targets = []  # (day rows, piles, key) of each pair this rollup keeps
        if self.regions:
            targets.append((self.days, self.open, region_id or 0))
        if self.owners:
            targets.append((self.owner_days, self.owner_open, owner_id or 0))
        tz, sign = self.tz, self.sign * times
        day = at.astimezone(tz).date()
        begins_stay = from_code is None or from_code != to_code
        for days, piles, who in targets:
            if from_code is not None and from_status == OPEN and stay_started_at is not None:
                # an exit from an open stay
                dwell = max(epoch(at) - epoch(stay_started_at), 0)
                row = days[(day, from_code, who, source)]
                row[EXITS] += sign
                row[DWELL] += sign * dwell
                row[HISTOGRAM + dwell_bucket(dwell)] += sign
                if direction == "forward":
                    row[FORWARD] += sign
                    row[FORWARD_DWELL] += sign * dwell
                    days[(stay_started_at.astimezone(tz).date(), from_code, who, source)][CONVERTED] += sign
                elif direction == "backward":
                    row[BACKWARD] += sign
                pile = piles[(from_code, who, source)]
                pile[0] -= sign
                pile[1] -= sign * epoch(stay_started_at)
            if begins_stay:
                days[(day, to_code, who, source)][ENTRIES] += sign
            if to_status == OPEN:
                entered = at if begins_stay or stay_started_at is None else stay_started_at
                pile = piles[(to_code, who, source)]
                pile[0] += sign
                pile[1] += sign * epoch(entered)
            if to_status == WON and from_status == OPEN:
                row = days[(day, to_code, who, source)]
                row[WINS] += sign
                row[WIN_CYCLE] += sign * max(epoch(at) - epoch(lead_created_at), 0)

    def add_history(
        self, lead: LeadFacts, moves: Iterable[MoveFacts], *, owner_id: int | None = None
    ) -> None:
        """Replay one lead's moves, oldest first, tracking when each stay began; under `owner_id`
        when given (a hand-over's old owner), else the lead's own."""
        stay_started_at: dt.datetime | None = None
        owner = lead.owner_id if owner_id is None else owner_id
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
                owner_id=owner,
            )
            if move.from_code is None or move.from_code != move.to_code:
                stay_started_at = move.at

    def write(self) -> None:
        """Add the deltas to the tables: one upsert each (`INSERT … ON CONFLICT DO UPDATE`,
        which SQLite and PostgreSQL both speak), so concurrent moves add up instead of racing;
        on PostgreSQL in one round trip (`core.rows.statements_run`)."""
        statements: list[tuple[str, list[Any]]] = []
        if self.regions:
            statements += _pair_statements(FunnelDay, FunnelOpen, "region_id", self.days, self.open)
        if self.owners:
            statements += _pair_statements(
                FunnelOwnerDay, FunnelOwnerOpen, "owner_id", self.owner_days, self.owner_open
            )
        statements_run(statements)


def _pair_statements(
    day_model: Any,
    open_model: Any,
    who: str,
    days: dict[DayKey, list[int]],
    piles: dict[OpenKey, list[int]],
) -> list[tuple[str, list[Any]]]:
    """Day rows, their week sums, and the pile-up of one pair of tables: the upserts."""
    weeks: defaultdict[DayKey, list[int]] = defaultdict(lambda: [0] * len(DAY_COUNTERS))
    for (day, *rest), values in days.items():
        week = weeks[(week_start(day), *rest)]  # type: ignore[index]
        for i, value in enumerate(values):
            week[i] += value
    day_rows = [("d", *key, *values) for key, values in days.items() if any(values)]
    day_rows += [("w", *key, *values) for key, values in weeks.items() if any(values)]
    open_rows = [(*key, *values) for key, values in piles.items() if any(values)]
    return [
        *_upserts(day_model, ["span", "day", "stage_code", who, "source"], DAY_COUNTERS, day_rows),
        *_upserts(open_model, ["stage_code", who, "source"], ("open_leads", "entered_epoch_sum"), open_rows),
    ]


UPSERT_PARAMETERS = 30_000  # bound parameters per statement: under SQLite's 32,766 and PostgreSQL's 65,535


def _upserts(
    model: Any, keys: list[str], counters: Iterable[str], rows: list[Any]
) -> list[tuple[str, list[Any]]]:
    """The upserts adding `rows` (keys, then counters) to `model`'s table. Many rows per statement
    (`VALUES (…), (…), …`): a replay writes tens of thousands of rows, and one statement a row
    cost most of a million-lead rebuild on PostgreSQL. The rows of one write have distinct keys
    (they come from a dict), which one statement's ON CONFLICT needs.

    Only the counters some row changes are sent and added; the others are inserted as 0 and left
    alone on conflict. A batch of arrivals changes one counter of a day row's ~60: sent whole, the
    two day tables' upserts were a quarter of a webhook batch's statement time on PostgreSQL
    (planning and updating every column of every row)."""
    if not rows:
        return []
    counters = tuple(counters)
    width = len(keys)
    used = tuple(i for i, _ in enumerate(counters) if any(row[width + i] for row in rows))
    head, conflict, arrays, width = _upsert_parts(model, tuple(keys), counters, used)
    columns = [*range(len(keys)), *(len(keys) + i for i in used)]
    if arrays:
        # One array per column: the statement's text is the same whatever the number of rows, so
        # psycopg parses it once (it re-parsed a long VALUES list on every call — 15% of a webhook
        # burst's server time on PostgreSQL, profiled). The values are numbers, dates and codes:
        # none carries the quotes that make text arrays slow to write (core/postgresql/base.py).
        return [(f"{head}FROM unnest({arrays}) {conflict}", [[row[c] for row in rows] for c in columns])]
    one_row = f"({', '.join(['%s'] * width)})"
    per_statement = max(1, UPSERT_PARAMETERS // width)
    statements = []
    for start in range(0, len(rows), per_statement):
        part = rows[start : start + per_statement]
        # (SQLite reads `ON CONFLICT` after a SELECT only once a WHERE clause ends it)
        sql = f"{head}FROM (VALUES {', '.join([one_row] * len(part))}) WHERE 1 {conflict}"
        statements.append((sql, [row[c] for row in part for c in columns]))
    return statements


_UPSERT_PARTS: dict[tuple[Any, ...], tuple[str, str, str, int]] = {}


def _upsert_parts(
    model: Any, keys: tuple[str, ...], counters: tuple[str, ...], used: tuple[int, ...]
) -> tuple[str, str, str, int]:
    """An upsert's `INSERT INTO t (…) SELECT *, 0, … `, its `ON CONFLICT … DO UPDATE SET …`,
    PostgreSQL's typed arrays (empty on SQLite) and the number of values a row sends, for the
    counters `used` (their indexes; the others are 0), worked out once per table and counters
    (every webhook batch writes four)."""
    key = (model, keys, counters, used, connection.alias, connection.vendor)
    parts = _UPSERT_PARTS.get(key)
    if parts is None:
        quote = connection.ops.quote_name
        table = quote(model._meta.db_table)
        sent = [*keys, *(counters[i] for i in used)]
        zeros = [c for i, c in enumerate(counters) if i not in used]
        adds = ", ".join(f"{quote(c)} = {table}.{quote(c)} + excluded.{quote(c)}" for c in sent[len(keys) :])
        # a write that changes no counter still makes its rows (as it always has): DO NOTHING
        conflict = f"ON CONFLICT ({', '.join(quote(k) for k in keys)}) " + (
            f"DO UPDATE SET {adds}" if adds else "DO NOTHING"
        )
        head = (
            f"INSERT INTO {table} ({', '.join(quote(c) for c in [*sent, *zeros])}) "
            f"SELECT *{''.join(', 0' for _ in zeros)} "
        )
        arrays = ""
        if connection.vendor == "postgresql":
            meta = model._meta
            arrays = ", ".join(f"%s::{meta.get_field(c).db_type(connection)}[]" for c in sent)
        parts = _UPSERT_PARTS[key] = (head, conflict, arrays, len(sent))
    return parts


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
    """C5: add one appended move to the rollups. Called inside the move's transaction (the
    receiver of `lead_stage_moved`, sent by `stage_move_record`), with the lead row as it stood
    *before* the move (its `stage_entered_at` is the beginning of the stay the move ends)."""
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
        owner_id=lead.owner_id,
    )
    rollup.write()


def funnel_owners_sync(*, lead_ids: list[int]) -> int:
    """C5: these leads may have changed owner (routing, a hand-over, an edit). A lead's funnel rows
    count for its current owner, so its moves are replayed out of the owner pair under the owner
    they were counted for and into it under the new one; the region pair does not change. The owner
    they were counted for is the one the lead's derived rows record (`IndicatorLead.owner_id`, which
    `indicator_facts_owner_sync` updates next — `insights.receivers.on_leads_reassigned` calls the
    two in that order). Returns the number of leads whose rows moved. A few statements per 900 leads."""
    from salesloop.crm.models import Lead
    from salesloop.insights.models import IndicatorLead

    moved = 0
    for start in range(0, len(lead_ids), 900):
        part = lead_ids[start : start + 900]
        # the owner the rows count for (0: nobody); NULL when the lead has no derived rows at all
        counted = IndicatorLead.objects.filter(lead_id=OuterRef("pk")).values(owner=Coalesce("owner_id", 0))[
            :1
        ]
        # Only the leads whose rows count another owner come back: a routed import chunk's leads
        # have no rows yet (announced after routing) and cost nothing but this look-up.
        rows = (
            Lead.objects.filter(pk__in=part)
            .annotate(counted_owner=Subquery(counted), owner_now=Coalesce("owner_id", 0))
            .filter(counted_owner__isnull=False)
            .exclude(counted_owner=F("owner_now"))
            .values_list("id", "region_id", "source", "created_at", "owner_id", "counted_owner")
        )
        leads: dict[int, LeadFacts] = {}
        old_owner: dict[int, int] = {}
        for lead_id, region_id, source, created_at, owner_id, counted_owner in rows:
            leads[lead_id] = LeadFacts(lead_id, region_id, source, created_at, owner_id)
            old_owner[lead_id] = counted_owner
        if not leads:
            continue
        out, into = Rollup(regions=False, sign=-1), Rollup(regions=False)
        into.owner_days, into.owner_open = out.owner_days, out.owner_open  # one set of deltas
        for lead_id, moves in _histories(moves_of({"lead_id__in": list(leads)})):
            out.add_history(leads[lead_id], moves, owner_id=old_owner[lead_id])
            into.add_history(leads[lead_id], moves)
        into.write()
        moved += len(leads)
    return moved


# ---- replaying the facts ---------------------------------------------------------------------------


def stage_codes() -> dict[int, str]:
    from salesloop.pipeline.models import Stage

    return dict(Stage.objects.values_list("id", "code"))


def moves_of(moves_filter: dict[str, Any], codes: dict[int, str] | None = None) -> Iterator[MoveFacts]:
    """The moves of some leads (`moves_filter`: lookups on StageMove), by lead then time. Only
    the explanation's `direction` is read from its JSON, by the database. Stage codes come from
    `codes` (stage id → code, read once for a replay of many leads) or, without it, from a join
    (one query for a few leads)."""
    from salesloop.pipeline.models import StageMove

    rows = list(
        StageMove.objects.filter(**moves_filter)
        .order_by()  # sorted here: asked of the database, an ORDER BY lead_id steers PostgreSQL to
        # walk the whole (lead, at, id) index in order instead of looking up the few leads asked for
        .values_list(
            "lead_id",
            "at",
            "id",
            "from_stage_id" if codes is not None else "from_stage__code",
            "to_stage_id" if codes is not None else "to_stage__code",
            "from_status",
            "to_status",
            KT("explanation__direction"),
        )
    )
    rows.sort(key=lambda row: (row[0], row[1], row[2]))
    for lead_id, at, _id, from_id, to_id, from_status, to_status, direction in rows:
        if codes is not None:
            from_id, to_id = codes[from_id] if from_id else None, codes[to_id]
        yield MoveFacts(lead_id, from_id, to_id, from_status, to_status, direction, at)


def _histories(moves: Iterable[MoveFacts]) -> Iterator[tuple[int, list[MoveFacts]]]:
    """(lead id, its moves oldest first) from moves sorted by lead then time."""
    current: list[MoveFacts] = []
    current_id: int | None = None
    for move in moves:
        if move.lead_id != current_id:
            if current_id is not None:
                yield current_id, current
            current, current_id = [], move.lead_id
        current.append(move)
    if current_id is not None:
        yield current_id, current


def rollup_of_leads(
    leads: dict[int, LeadFacts], moves_filter: dict[str, Any], *, regions: bool = True
) -> Rollup:
    """Replay the moves of `leads` (selected by `moves_filter`) into one Rollup (without the region
    pair when `regions` is false)."""
    rollup = Rollup(regions=regions)
    for lead_id, moves in _histories(moves_of(moves_filter, stage_codes())):
        if lead_id in leads:
            rollup.add_history(leads[lead_id], moves)
    return rollup


def lead_facts(leads: Any) -> dict[int, LeadFacts]:
    return {
        row[0]: LeadFacts(*row)
        for row in leads.values_list("id", "region_id", "source", "created_at", "owner_id")
    }


# Leads replayed per write: each write adds onto most of the period's rows, so fewer, larger chunks
# rewrite them fewer times (300k leads on SQLite: 77 s at 20,000, 55 s at 100,000 — but ~0.9 GB
# resident at 100,000); 50,000 keeps a replay's memory near half a gigabyte.
REBUILD_CHUNK = 50_000


@transaction.atomic
def funnel_rollup_rebuild(*, progress: Any = None) -> int:
    """Empty the rollups and replay every stage move into them (DESIGN.md rule 1); the result
    equals what the moves added one by one. Returns the number of leads replayed."""
    for model in (FunnelDay, FunnelOpen, FunnelOwnerDay, FunnelOwnerOpen):
        model.objects.all().delete()
    return funnel_rollup_add_leads(progress=progress)


def funnel_owner_rollup_rebuild() -> int:
    """Empty the pair of rollups by owner and replay every stage move into it: what migration
    0003 runs on a database that had leads before the pair existed."""
    for model in (FunnelOwnerDay, FunnelOwnerOpen):
        model.objects.all().delete()
    return funnel_rollup_add_leads(regions=False)


def funnel_rollup_add_leads(
    *, first_id: int = 0, last_id: int | None = None, progress: Any = None, regions: bool = True
) -> int:
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
            rollup_of_leads(leads, {"lead_id__gte": start, "lead_id__lt": end}, regions=regions).write()
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
            owner_id=lead.owner_id,
        )
    rollup.write()


def funnel_import_entries_apply(
    *,
    stage_id: int,
    source: str,
    entries: Iterable[tuple[int | None, Any]],
    owners: Iterable[int | None] | None = None,
) -> None:
    """C5: leads written by an import chunk (intake.imports.engine), each (region id, arrival) open
    in the stage `stage_id` — as `funnel_move_apply` would add their entry moves — under their
    owner in `owners` (same order; None or no list: nobody). Two statements per chunk whatever its
    size. Entries alike (region, arrival, owner: a chunk's leads share their arrival) are added
    once, times their number: one `add_move` per lead was ~4% of a million-row import (py-spy)."""
    from salesloop.pipeline.models import Stage

    code = Stage.objects.filter(pk=stage_id).values_list("code", flat=True).get()
    rollup = Rollup()
    entries = list(entries)
    owner_ids = list(owners) if owners is not None else [None] * len(entries)
    if len(owner_ids) != len(entries):
        raise ValueError("funnel_import_entries_apply: one owner per entry")
    alike = Counter(
        (region_id, at, owner_id) for (region_id, at), owner_id in zip(entries, owner_ids, strict=True)
    )
    for (region_id, at, owner_id), times in alike.items():
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
            owner_id=owner_id,
            times=times,
        )
    rollup.write()
