"""The routing sandbox (C8.4): try a candidate rule set before it goes live.

(a) **Replay** — `replay` runs the candidate *and* the current rules over the leads created in a
past window (default: the policy's `replay_days`, 90 days) in arrival order, each with the same
engine live routing uses (`engine.decide`) against its own in-memory state, and measures both with
routing.fairness. It reads leads in keyset batches as plain tuples and touches no lead and no
assignment; the only write is the report (`simulate_start` → task `routing_replay` → `replay_run`).

Choices a replay makes, the same for both sides so the comparison is fair:
- *Loads* start at the real open leads of each rep at the window's start (leads created before the
  window and not closed by then, counted for their owner today), and those leads close at their
  real `closed_at` as the replay's time passes. Leads of the window close at their real `closed_at`
  too, for whichever rep the side gave them — so open-lead caps and least-loaded behave as they
  would have. (Loads are only read when a rule set or a rep has an open-lead cap or a rule is
  least-loaded; otherwise they cannot change a decision.) New-per-day counts start at zero.
- *Rotations* start fresh for each side.
- *The roster is today's*: today's reps, regions, tags and caps, and the leaves that overlapped the
  window. A rep who has left is out of both replays.
- *Every lead created in the window counts*, merged duplicates included: they arrived, and were
  routed.
- *Without a baseline* (no version in force) the current side is the leads' owners today.

(b) **Live A/B** — `ab_test_start` routes `share` of new leads (default the policy's `ab_share`, 10%)
by a candidate for a set period; `services.lead_route` and `leads_route_bulk` pick the arm
(`services.ab_arm`) and record it on the Assignment. `ab_report_refresh` measures the two arms from
those assignments with the same fairness numbers.
"""

from __future__ import annotations

import datetime as dt
import heapq
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404
from django.utils import timezone

from salesloop.accounts.models import Province, Region, User
from salesloop.core import clock
from salesloop.core.audit import audit_record, snapshot
from salesloop.core.roles import Role, is_admin
from salesloop.crm.models import Lead, LeadStatus
from salesloop.routing import engine, fairness, services
from salesloop.routing.engine import LeadFacts, Rep, Roster
from salesloop.routing.models import (
    Assignment,
    ReportKind,
    ReportStatus,
    RoutingPolicy,
    RoutingReport,
    RuleSet,
    RuleSetStatus,
)
from salesloop.routing.roster import roster_load
from salesloop.routing.ruleset import RuleSetDefinition, Strategy
from salesloop.routing.state import MemoryState

log = logging.getLogger(__name__)

REPLAY_BATCH = 5000
MAX_WINDOW_DAYS = 3650
AB_MAX_DAYS = 90
AB_DEFAULT_DAYS = 14
AB_REFRESH_SECONDS = 60  # a running A/B report read more often than this shows its last numbers
REPORT_FIELDS = ("kind", "status", "window_start", "window_end", "share", "stopped_at", "finished_at")


class _InForce:
    def __repr__(self) -> str:
        return "IN_FORCE"


IN_FORCE: Any = _InForce()  # replay's default baseline: the version in force now


@dataclass
class ReplayResult:
    metrics: dict[str, Any]
    findings: list[dict[str, Any]]
    region_match_drop: float
    worse: bool
    leads: int
    seconds: float


# ---- replay ---------------------------------------------------------------------------------------


def _ref(ruleset: RuleSet | None) -> dict[str, Any] | None:
    if ruleset is None:
        return None
    return {"id": ruleset.pk, "version": ruleset.version, "name": ruleset.name}


def _geography() -> tuple[dict[str, str | None], dict[str, str], dict[int, str]]:
    """(province → its region's code, province → name, region id → code): two small queries."""
    regions = dict(Region.objects.values_list("id", "code"))
    region_of: dict[str, str | None] = {}
    names: dict[str, str] = {}
    for code, name, region_id in Province.objects.values_list("code", "name", "region_id"):
        region_of[code] = regions.get(region_id) if region_id else None
        names[code] = name
    return region_of, names, regions


def conversion_rates(user_ids: set[int], before: dt.datetime) -> dict[int, float]:
    """C8.4: each rep's historical conversion rate — won ÷ closed (won + lost) of their leads closed
    before `before`. Reps without a closed lead have no rate. One query."""
    if not user_ids:
        return {}
    rows = (
        Lead.objects.filter(
            owner_id__in=sorted(user_ids),
            status__in=[LeadStatus.WON, LeadStatus.LOST],
            closed_at__lt=before,
        )
        .values("owner_id")
        .annotate(won=Count("id", filter=Q(status=LeadStatus.WON)), closed=Count("id"))
        .values_list("owner_id", "won", "closed")
    )
    return {owner: won / closed for owner, won, closed in rows if closed}


def _loads_matter(definitions: list[RuleSetDefinition], roster: Roster) -> bool:
    for definition in definitions:
        if definition.defaults.max_open_leads:
            return True
        for routing in [*definition.rules, definition.fallback]:
            if routing.caps.max_open_leads or routing.strategy == Strategy.LEAST_LOADED:
                return True
    return any(rep.max_open_leads for rep in roster.reps.values())


def _open_at(start: dt.datetime, end: dt.datetime) -> tuple[dict[int, int], list[tuple[float, int]]]:
    """Open leads per owner at `start`, and when (a timestamp) those of them that close before
    `end` close."""
    before = Lead.objects.filter(created_at__lt=start, owner_id__isnull=False).filter(
        Q(closed_at__isnull=True) | Q(closed_at__gt=start)
    )
    counts = dict(before.values("owner_id").annotate(n=Count("id")).values_list("owner_id", "n"))
    closes = [
        (closed_at.timestamp(), owner)
        for closed_at, owner in before.filter(closed_at__lt=end).values_list("closed_at", "owner_id")
    ]
    return counts, closes


class ReplayState(MemoryState):
    """A MemoryState for a replay, which moves forward in time only: new-per-day counts are kept
    for the current local day alone (rolled over at midnight), and `loads` hands the engine the
    whole tables instead of copying the pool's entries — the engine only looks its candidates up.
    Same answers as MemoryState, without two dictionary copies per rule evaluated."""

    def __init__(self, *, open_leads: dict[int, int], tz: dt.tzinfo) -> None:
        super().__init__(open_leads=open_leads, tz=tz)
        self._today: dict[int, int] = {}
        self._day_starts = self._day_ends = dt.datetime.max.replace(tzinfo=dt.UTC)

    def _roll(self, at: dt.datetime) -> dict[int, int]:
        if not self._day_starts <= at < self._day_ends:
            local = at.astimezone(self._tz)
            midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
            following = (midnight + dt.timedelta(days=1)).date()
            # Kept in UTC, like the leads' times: comparing datetimes of one tzinfo is cheap.
            self._day_starts = midnight.astimezone(dt.UTC)
            self._day_ends = dt.datetime.combine(following, dt.time(), tzinfo=self._tz).astimezone(dt.UTC)
            self._today = {}
        return self._today

    def loads(self, user_ids: list[int], at: dt.datetime) -> tuple[dict[int, int], dict[int, int]]:
        return self.open_leads, self._roll(at)

    def record(self, key: str, rotation: engine.Rotation, user_id: int, at: dt.datetime) -> None:
        rotation.advance(user_id)
        self.open_leads[user_id] += 1
        today = self._roll(at)
        today[user_id] = today.get(user_id, 0) + 1


class _ReplaySide:
    """One rule set replayed: its own loads and rotations in memory, and its fairness tally."""

    def __init__(
        self,
        definition: RuleSetDefinition,
        ruleset: RuleSet,
        roster: Roster,
        open_leads: dict[int, int],
        closes: list[tuple[float, int]],
        track_loads: bool,
    ) -> None:
        self.definition = definition
        self.ref = {**(_ref(ruleset) or {}), "arm": ""}
        self.roster = roster
        self.tz = clock.org_tz()
        self.state = ReplayState(open_leads=open_leads, tz=self.tz)
        self.closes = list(closes)
        heapq.heapify(self.closes)
        self.track_loads = track_loads
        self.tally = fairness.SideTally(roster)

    def decide(self, facts: LeadFacts, at: float, closed_at: float | None) -> int | None:
        """The side's winner for the lead arriving at `at` (a timestamp); leads that closed by then
        leave their rep's load first."""
        closes = self.closes
        while closes and closes[0][0] <= at:
            self.state.close(heapq.heappop(closes)[1])
        winner = engine.decide(
            facts=facts,
            definition=self.definition,
            roster=self.roster,
            state=self.state,
            tz=self.tz,
            ruleset_ref=self.ref,
            with_trace=False,
        ).winner_id
        if winner is not None and closed_at is not None and self.track_loads:
            heapq.heappush(closes, (closed_at, winner))
        return winner


LEAD_COLUMNS = (
    "id",
    "source",
    "customer__province_id",
    "region_id",
    "customer__industry",
    "customer__city",
    "created_at",
    "closed_at",
    "contact__phone",
    "owner_id",
)
_ID, _CREATED_AT = LEAD_COLUMNS.index("id"), LEAD_COLUMNS.index("created_at")


def _lead_rows(
    start: dt.datetime, end: dt.datetime, columns: tuple[str, ...], batch: int
) -> Iterator[list[tuple[Any, ...]]]:
    """The window's leads in arrival order, as tuples, a keyset batch at a time (created_at, id)."""
    window = Lead.objects.filter(created_at__gte=start, created_at__lt=end).order_by("created_at", "id")
    after: tuple[dt.datetime, int] | None = None
    while True:
        page = window
        if after is not None:
            # (created_at, id) > after, written as a range the created_at index serves directly
            page = window.filter(created_at__gte=after[0]).exclude(created_at=after[0], id__lte=after[1])
        rows = list(page.values_list(*columns)[:batch])
        if not rows:
            return
        yield rows
        if len(rows) < batch:
            return
        after = (rows[-1][_CREATED_AT], rows[-1][_ID])


def replay(
    *,
    candidate: RuleSet,
    baseline: RuleSet | None = IN_FORCE,
    window_start: dt.datetime | None = None,
    window_end: dt.datetime | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    batch: int = REPLAY_BATCH,
    parallel: bool | None = None,
) -> ReplayResult:
    """C8.4(a): replay the window's leads through the baseline (default: the version in force now;
    None: the leads' owners today) and through the candidate, and compare their fairness. Reads
    only. `on_progress(done, total)` is called before the first lead and after each batch (of the
    baseline's pass: with `parallel` — by default above PARALLEL_MIN_LEADS on two cores — the
    candidate is replayed at the same time in a second process)."""
    began = time.perf_counter()
    # Read, never create: a replay writes nothing (an organisation without a policy row has the defaults).
    policy = RoutingPolicy.objects.order_by("id").first() or RoutingPolicy()
    window_end = window_end or clock.now()
    window_start = window_start or window_end - dt.timedelta(days=policy.replay_days)
    if baseline is IN_FORCE:
        baseline = services.ruleset_in_force(clock.now())
    candidate_definition = services.definition_of(candidate)
    baseline_definition = services.definition_of(baseline) if baseline is not None else None
    definitions = [d for d in (baseline_definition, candidate_definition) if d is not None]
    roster = roster_load(leaves_from=window_start, leaves_to=window_end)
    region_of, province_names, region_codes = _geography()
    uses_fields = any(rule.when.fields for d in definitions for rule in d.rules)
    columns = LEAD_COLUMNS + (("custom_fields",) if uses_fields else ())
    track_loads = _loads_matter(definitions, roster)
    open_leads, closes = _open_at(window_start, window_end) if track_loads else ({}, [])

    sides: list[_ReplaySide] = []
    if baseline_definition is not None and baseline is not None:
        sides.append(
            _ReplaySide(baseline_definition, baseline, roster, dict(open_leads), closes, track_loads)
        )
    sides.append(_ReplaySide(candidate_definition, candidate, roster, dict(open_leads), closes, track_loads))
    owners = fairness.SideTally(roster) if baseline is None else None

    total = Lead.objects.filter(created_at__gte=window_start, created_at__lt=window_end).count()
    if on_progress is not None:
        on_progress(0, total)
    candidate_run = sides[-1]
    forked = _replay_fork(
        candidate_run, window_start, window_end, columns, batch, parallel, total, len(sides)
    )
    mine = sides[:-1] if forked is not None else sides
    done = _replay_pass(
        mine, owners, window_start, window_end, columns, batch, on_progress, total, region_of, region_codes
    )
    if forked is not None:
        candidate_run.tally = forked.result(roster)

    current_tally = owners if owners is not None else sides[0].tally
    candidate_tally = sides[-1].tally
    _name_outsiders(roster, set(current_tally.per_rep) | set(candidate_tally.per_rep))
    population = fairness.pool_population(definitions, roster)
    rates = conversion_rates(
        population | set(current_tally.per_rep) | set(candidate_tally.per_rep), window_start
    )
    limit = float(policy.province_share_limit)

    def measured(tally: fairness.SideTally) -> dict[str, Any]:
        return tally.side(
            population=population, conversion_rates=rates, province_names=province_names, share_limit=limit
        )

    current, candidate_side = measured(current_tally), measured(candidate_tally)
    return ReplayResult(
        metrics={
            "current": current,
            "candidate": candidate_side,
            "window": {"start": window_start.isoformat(), "end": window_end.isoformat(), "leads": done},
            "baseline": _ref(baseline),
        },
        findings=fairness.compare(current, candidate_side, policy),
        region_match_drop=fairness.region_match_drop(current, candidate_side),
        worse=fairness.worse(current, candidate_side, policy),
        leads=done,
        seconds=time.perf_counter() - began,
    )


def _replay_pass(
    sides: list[_ReplaySide],
    owners: fairness.SideTally | None,
    window_start: dt.datetime,
    window_end: dt.datetime,
    columns: tuple[str, ...],
    batch: int,
    on_progress: Callable[[int, int], None] | None,
    total: int,
    region_of: dict[str, str | None],
    region_codes: dict[int, str],
) -> int:
    """One pass over the window's leads, each through every given side (and the owners' tally)."""
    done = 0
    no_fields: dict[str, str] = {}
    uses_fields = len(columns) > len(LEAD_COLUMNS)
    track_loads = any(side.track_loads for side in sides)
    for rows in _lead_rows(window_start, window_end, columns, batch):
        for row in rows:
            lead_id, source, province, region_id, industry, city, created_at, closed_at, phone, owner_id = (
                row[:10]
            )
            province_region = region_of.get(province) if province else None
            fields = (
                {str(k): str(v) for k, v in (row[10] or {}).items()}
                if uses_fields and isinstance(row[10], dict)
                else no_fields
            )
            facts = LeadFacts(
                lead_id=lead_id,
                source=source,
                province=province,
                region=region_codes.get(region_id) if region_id else province_region,
                industry=industry or "",
                city=city or "",
                fields=fields,
                at=created_at,
            )
            phone = phone or ""
            at = created_at.timestamp()
            closes_at = closed_at.timestamp() if closed_at is not None and track_loads else None
            for side in sides:
                winner = side.decide(facts, at, closes_at)
                side.tally.add(province, province_region, facts.industry, phone, winner)
            if owners is not None:
                owners.add(province, province_region, facts.industry, phone, owner_id)
        done += len(rows)
        if on_progress is not None:
            on_progress(done, max(total, done))

    return done


# Above this many leads a replay runs the candidate in a second process (C8 item 9: 100k leads in
# ≤ 10 s on 2 cores); below it, starting a process costs more than it saves.
PARALLEL_MIN_LEADS = 20_000


class _Forked:
    """The candidate's side replayed by a child process; `result` waits for its tally."""

    def __init__(self, process: Any, receiver: Any) -> None:
        self.process, self.receiver = process, receiver

    def result(self, roster: Roster) -> fairness.SideTally:
        try:
            outcome = self.receiver.recv()
        except EOFError:
            outcome = ("error", "the replay's second process ended without an answer")
        finally:
            self.process.join()
        if outcome[0] == "error":
            raise RuntimeError(outcome[1])
        tally: fairness.SideTally = outcome[1]
        tally.roster = roster
        return tally


def _replay_fork(
    side: _ReplaySide,
    window_start: dt.datetime,
    window_end: dt.datetime,
    columns: tuple[str, ...],
    batch: int,
    parallel: bool | None,
    total: int,
    sides: int,
) -> _Forked | None:
    """Start the candidate's replay in a forked process when it pays: two sides, enough leads, two
    cores, and no open transaction (a child cannot see uncommitted rows — a test's, say)."""
    import multiprocessing
    import os

    from django.db import connection

    if parallel is None:
        parallel = total >= PARALLEL_MIN_LEADS and (os.cpu_count() or 1) > 1
    if not parallel or sides < 2 or connection.in_atomic_block:
        return None
    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_replay_child, args=(sender, side, window_start, window_end, columns, batch), daemon=True
    )
    process.start()
    sender.close()
    return _Forked(process, receiver)


_INHERITED: list[Any] = []  # the parent's database connections, kept from being closed by the child


def _replay_child(
    sender: Any,
    side: _ReplaySide,
    window_start: dt.datetime,
    window_end: dt.datetime,
    columns: tuple[str, ...],
    batch: int,
) -> None:
    from django.db import connections

    # The parent's connections belong to the parent: open our own, and never close (or let the
    # garbage collector close) theirs, which would end the parent's session.
    for conn in connections.all(initialized_only=True):
        _INHERITED.append(conn.connection)
        conn.connection = None
    try:
        region_of, _, region_codes = _geography()
        _replay_pass([side], None, window_start, window_end, columns, batch, None, 0, region_of, region_codes)
        side.tally.roster = None  # type: ignore[assignment]  # the parent has it; don't ship it back
        sender.send(("ok", side.tally))
    except BaseException as exc:  # reported to the parent, which fails the report readably
        sender.send(("error", f"{exc.__class__.__name__}: {exc}"))
    finally:
        for conn in connections.all(initialized_only=True):
            if conn.connection is not None and conn.connection not in _INHERITED:
                conn.close()
        sender.close()


def _name_outsiders(roster: Roster, user_ids: set[int]) -> None:
    """Owners outside the routing roster (a director who kept a lead) still get a name in the report."""
    missing = [u for u in user_ids if u not in roster.reps]
    for user in User.objects.filter(pk__in=missing).select_related("region"):
        roster.reps[user.pk] = Rep(
            id=user.pk,
            username=user.username,
            name=str(user),
            region=user.region.code if user.region else None,
            team=None,
            active=user.is_active,
            is_rep=False,
        )


# ---- simulation reports (the background replay) --------------------------------------------------


def _require_router(actor: Any) -> None:
    if not (is_admin(actor) or actor.role == Role.DIRECTOR):
        raise PermissionDenied("only directors and administrators run the routing sandbox")


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is not None and timezone.is_naive(moment):
        return moment.replace(tzinfo=clock.org_tz())
    return moment


def replay_window(
    *, days: int | None = None, window_start: dt.datetime | None = None, window_end: dt.datetime | None = None
) -> tuple[dt.datetime, dt.datetime]:
    """The window a simulation replays: `days` back from `window_end` (default: now and the
    policy's replay_days), or from `window_start`. Naive times are read in the organisation's zone;
    an end in the future is now."""
    now = clock.now()
    window_start, window_end = _aware(window_start), _aware(window_end)
    if days is not None and window_start is not None:
        raise ValidationError({"days": "give days or window_start, not both"})
    if days is not None and not (isinstance(days, int) and 1 <= days <= MAX_WINDOW_DAYS):
        raise ValidationError({"days": f"a whole number of days from 1 to {MAX_WINDOW_DAYS}"})
    end = min(window_end or now, now)
    if window_start is None:
        window_start = end - dt.timedelta(days=days or services.policy_get().replay_days)
    if window_start >= end:
        raise ValidationError({"window_start": "the window starts before it ends (and before now)"})
    if end - window_start > dt.timedelta(days=MAX_WINDOW_DAYS):
        raise ValidationError({"window_start": f"a window of at most {MAX_WINDOW_DAYS} days"})
    return window_start, end


def simulate_start(
    *,
    actor: Any,
    ruleset: RuleSet,
    days: int | None = None,
    window_start: dt.datetime | None = None,
    window_end: dt.datetime | None = None,
) -> RoutingReport:
    """C8.4(a): a pending replay report of the version against the one in force now, and the
    background task that fills it in (a progress bar reads leads_done / leads_total)."""
    from salesloop.routing.tasks import routing_replay

    _require_router(actor)
    start, end = replay_window(days=days, window_start=window_start, window_end=window_end)
    report = RoutingReport.objects.create(
        ruleset=ruleset,
        baseline=services.ruleset_in_force(clock.now()),
        kind=ReportKind.REPLAY,
        status=ReportStatus.PENDING,
        window_start=start,
        window_end=end,
        created_by=actor,
        created_at=clock.now(),
    )
    audit_record(
        actor=actor,
        action="routing.replay.start",
        target=report,
        after={"ruleset": ruleset.pk, "baseline": report.baseline_id, **snapshot(report, REPORT_FIELDS)},
    )
    # The database backend stores the task in this transaction, so a worker finds the report.
    routing_replay.enqueue(report.pk)
    report.refresh_from_db()
    return report


def replay_run(*, report_id: int) -> RoutingReport:
    """The background replay of a pending report: progress as it goes, then the metrics and
    findings (status done), or status failed with a readable error."""
    claimed = RoutingReport.objects.filter(pk=report_id, status=ReportStatus.PENDING).update(
        status=ReportStatus.RUNNING
    )
    report = RoutingReport.objects.select_related("ruleset", "baseline").get(pk=report_id)
    if not claimed:
        return report  # another worker has it, or it is over

    def progress(done: int, total: int) -> None:
        RoutingReport.objects.filter(pk=report_id).update(leads_done=done, leads_total=total)

    try:
        result = replay(
            candidate=report.ruleset,
            baseline=report.baseline,
            window_start=report.window_start,
            window_end=report.window_end,
            on_progress=progress,
        )
    except Exception as exc:  # any failure ends as a readable status, never a stuck report
        log.exception("routing replay %s failed", report_id)
        RoutingReport.objects.filter(pk=report_id).update(
            status=ReportStatus.FAILED,
            error=f"the replay failed: {exc.__class__.__name__}: {exc}"[:2000],
            finished_at=clock.now(),
        )
    else:
        RoutingReport.objects.filter(pk=report_id).update(
            status=ReportStatus.DONE,
            metrics=result.metrics,
            findings=result.findings,
            region_match_drop=result.region_match_drop,
            worse=result.worse,
            leads_total=result.leads,
            leads_done=result.leads,
            error="",
            finished_at=clock.now(),
        )
        log.info("routing replay %s: %s leads in %.2fs", report_id, result.leads, result.seconds)
    report.refresh_from_db()
    return report


# ---- live A/B tests -------------------------------------------------------------------------------


def _share(value: Any, default: Decimal) -> Decimal:
    if value is None:
        return default
    try:
        share = Decimal(str(value)).quantize(Decimal("0.001"))
    except (InvalidOperation, ValueError):
        raise ValidationError({"share": "a share between 0 and 1, e.g. 0.1"}) from None
    if not Decimal("0") < share < Decimal("1"):
        raise ValidationError({"share": "a share between 0 and 1 (both excluded), e.g. 0.1"})
    return share


@transaction.atomic
def ab_test_start(
    *,
    actor: Any,
    ruleset: RuleSet,
    share: Any = None,
    days: int | None = None,
    ends_at: dt.datetime | None = None,
) -> RoutingReport:
    """C8.4(b): from now until the end (default 14 days), `share` of new leads (default the policy's
    ab_share) are routed by the candidate, the rest by the version in force. One test at a time; the
    candidate is a draft or a published version not yet in effect. Audited."""
    _require_router(actor)
    # Lock the policy row: two directors starting a test at once take turns, and one is refused.
    policy = RoutingPolicy.objects.select_for_update().get(pk=services.policy_get().pk)
    now = clock.now()
    ruleset = RuleSet.objects.get(pk=ruleset.pk)
    pending = (
        ruleset.status == RuleSetStatus.PUBLISHED and ruleset.effective_at and ruleset.effective_at > now
    )
    if ruleset.status != RuleSetStatus.DRAFT and not pending:
        raise ValidationError(
            {
                "ruleset": f"v{ruleset.version} is {ruleset.status}; "
                "test a draft or a version not yet in effect"
            }
        )
    current = services.ruleset_in_force(now)
    if current is None:
        raise ValidationError({"ruleset": "no version is in force to test the candidate against"})
    for expired in RoutingReport.objects.filter(
        kind=ReportKind.AB, status=ReportStatus.RUNNING, window_end__lte=now
    ):
        ab_report_refresh(expired)
    running = services.ab_test_running(now)
    if running is not None:
        raise ValidationError(
            {
                "ab_test": f"the A/B test of v{running.ruleset.version} runs until "
                f"{running.window_end.astimezone(clock.org_tz()):%Y-%m-%d %H:%M}; stop it first"
            }
        )
    share_value = _share(share, policy.ab_share)
    ends_at = _aware(ends_at)
    if days is not None and ends_at is not None:
        raise ValidationError({"days": "give days or ends_at, not both"})
    if days is not None and not (isinstance(days, int) and 1 <= days <= AB_MAX_DAYS):
        raise ValidationError({"days": f"a whole number of days from 1 to {AB_MAX_DAYS}"})
    if ends_at is not None and not now < ends_at <= now + dt.timedelta(days=AB_MAX_DAYS):
        raise ValidationError({"ends_at": f"a moment after now and within {AB_MAX_DAYS} days"})
    report = RoutingReport.objects.create(
        ruleset=ruleset,
        baseline=current,
        kind=ReportKind.AB,
        status=ReportStatus.RUNNING,
        window_start=now,
        window_end=ends_at or now + dt.timedelta(days=days or AB_DEFAULT_DAYS),
        share=share_value,
        created_by=actor,
        created_at=now,
    )
    audit_record(
        actor=actor,
        action="routing.ab_test.start",
        target=report,
        after={"ruleset": ruleset.pk, "baseline": current.pk, **snapshot(report, REPORT_FIELDS)},
    )
    return report


@transaction.atomic
def ab_test_stop(actor: Any, report: RoutingReport) -> RoutingReport:
    """C8.4(b): end an A/B test now; from this moment every new lead follows the version in force.
    The report keeps the numbers of the test as it ran. Audited."""
    _require_router(actor)
    report = RoutingReport.objects.select_for_update().get(pk=report.pk)
    if report.kind != ReportKind.AB:
        raise ValidationError({"kind": "only a live A/B test is stopped; a replay simply finishes"})
    now = clock.now()
    if report.status != ReportStatus.RUNNING or report.stopped_at is not None or report.window_end <= now:
        raise ValidationError({"status": "the A/B test is already over"})
    before = snapshot(report, REPORT_FIELDS)
    report.stopped_at = now
    report.save(update_fields=["stopped_at"])
    report = ab_report_refresh(report)
    audit_record(
        actor=actor,
        action="routing.ab_test.stop",
        target=report,
        before=before,
        after=snapshot(report, REPORT_FIELDS),
    )
    return report


def _ab_end(report: RoutingReport, now: dt.datetime) -> dt.datetime:
    ends = [report.window_end or now, now]
    if report.stopped_at is not None:
        ends.append(report.stopped_at)
    return min(ends)


def ab_report_refresh(report: RoutingReport) -> RoutingReport:
    """C8.4(b): the fairness of the two arms, measured from the assignments the test made (arm
    "current" vs arm "candidate", in the order they were made). A test past its end or stopped is
    finished (status done) by its first refresh after that."""
    now = clock.now()
    end = _ab_end(report, now)
    policy = services.policy_get()
    roster = roster_load(leaves_from=report.window_start or now, leaves_to=end)
    region_of, province_names, _regions = _geography()
    tallies = {"current": fairness.SideTally(roster), "candidate": fairness.SideTally(roster)}
    rows = (
        Assignment.objects.filter(
            arm__in=list(tallies), created_at__gte=report.window_start, created_at__lte=end
        )
        .order_by("id")
        .values_list(
            "arm",
            "assignee_id",
            "lead__customer__province_id",
            "lead__customer__industry",
            "lead__contact__phone",
        )
    )
    leads = 0
    for arm, assignee_id, province, industry, phone in rows.iterator(chunk_size=REPLAY_BATCH):
        tallies[arm].add(
            province, region_of.get(province) if province else None, industry or "", phone or "", assignee_id
        )
        leads += 1
    definitions = [services.definition_of(r) for r in (report.baseline, report.ruleset) if r is not None]
    _name_outsiders(roster, set(tallies["current"].per_rep) | set(tallies["candidate"].per_rep))
    population = fairness.pool_population(definitions, roster)
    rates = conversion_rates(
        population | set(tallies["current"].per_rep) | set(tallies["candidate"].per_rep),
        report.window_start or now,
    )
    limit = float(policy.province_share_limit)
    current, candidate = (
        tallies[arm].side(
            population=population, conversion_rates=rates, province_names=province_names, share_limit=limit
        )
        for arm in ("current", "candidate")
    )
    report.metrics = {
        "current": current,
        "candidate": candidate,
        "window": {
            "start": report.window_start.isoformat() if report.window_start else None,
            "end": end.isoformat(),
            "leads": leads,
            "refreshed_at": now.isoformat(),
        },
        "baseline": _ref(report.baseline),
    }
    report.findings = fairness.compare(current, candidate, policy)
    report.region_match_drop = fairness.region_match_drop(current, candidate)
    report.worse = fairness.worse(current, candidate, policy)
    report.leads_total = report.leads_done = leads
    fields = ["metrics", "findings", "region_match_drop", "worse", "leads_total", "leads_done"]
    over = report.stopped_at is not None or (report.window_end is not None and report.window_end <= now)
    if report.status == ReportStatus.RUNNING and over:
        report.status = ReportStatus.DONE
        report.finished_at = end
        fields += ["status", "finished_at"]
    report.save(update_fields=fields)
    return report


def report_fresh(report: RoutingReport) -> RoutingReport:
    """A report as it is worth showing: a running A/B test's numbers are refreshed when older than
    AB_REFRESH_SECONDS (or the test has ended); anything else as stored."""
    if report.kind != ReportKind.AB or report.status != ReportStatus.RUNNING:
        return report
    now = clock.now()
    refreshed = (report.metrics or {}).get("window", {}).get("refreshed_at")
    stale = (
        refreshed is None
        or (now - dt.datetime.fromisoformat(refreshed)).total_seconds() >= AB_REFRESH_SECONDS
    )
    if stale or (report.window_end is not None and report.window_end <= now):
        report = ab_report_refresh(report)
    return report


# ---- reading reports ------------------------------------------------------------------------------


def may_read_reports(user: Any) -> bool:
    """Sandbox reports are for managers, directors and admins (a manager sits on the committee)."""
    return is_admin(user) or user.role in {Role.MANAGER, Role.DIRECTOR}


def report_get(*, user: Any, report_id: int) -> RoutingReport:
    report = (
        RoutingReport.objects.select_related("ruleset", "baseline").filter(pk=report_id).first()
        if may_read_reports(user)
        else None
    )
    if report is None:
        raise Http404("no such report")
    return report


def reports_visible_to(*, user: Any, ruleset_id: int | None = None, limit: int = 100) -> list[RoutingReport]:
    """Newest first (the report_ruleset_idx index serves a rule set's list)."""
    if not may_read_reports(user):
        return []
    reports = RoutingReport.objects.select_related("ruleset", "baseline").order_by("-id")
    if ruleset_id is not None:
        reports = reports.filter(ruleset_id=ruleset_id)
    return list(reports[:limit])
