"""The routing decision (C8.1, C8.2), free of the database: given a lead's facts, a rule set, the
roster of reps and a `State` (loads and rotations), decide who gets the lead and say why.

The same engine routes live leads (state in the database, rotation rows locked: services.py) and
replays history in the sandbox (state in memory: sandbox.py), so a simulation is exactly what the
rules would have done. The trace it returns is the `assignment` explanation's body.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from salesloop.routing.ruleset import Conditions, Pool, RuleSetDefinition, Strategy, _Routing

# Why a candidate was dropped, in the order the checks run. The codes are stable (API, pages);
# routing.trace_text renders them in the reader's language.
DROP_INACTIVE = "inactive"
DROP_ON_LEAVE = "on_leave"
DROP_OFF_HOURS = "off_hours"
DROP_OPEN_CAP = "open_cap"
DROP_DAILY_CAP = "daily_cap"
DROP_OTHER_REGION = "other_region"
DROP_NO_SPECIALTY = "no_specialty"
DROP_NO_WEIGHT = "no_weight"
KEPT = "eligible"


@dataclass(frozen=True, slots=True)
class LeadFacts:
    """What routing may read of a lead (conditions and strategies see nothing else)."""

    lead_id: int | None
    source: str
    province: str | None  # GB/T 2260 code, "44"
    region: str | None  # region code, "south"
    industry: str
    city: str
    fields: dict[str, str]
    at: dt.datetime  # aware; weekdays and hours are read in the organisation's time zone


@dataclass(frozen=True, slots=True)
class Rep:
    id: int
    username: str
    name: str
    region: str | None
    team: str | None
    active: bool
    is_rep: bool
    specialties: frozenset[str] = frozenset()
    max_open_leads: int | None = None
    max_new_per_day: int | None = None
    work_days: frozenset[int] = frozenset()
    work_start: dt.time | None = None
    work_end: dt.time | None = None


@dataclass
class Roster:
    reps: dict[int, Rep]
    leaves: dict[int, list[tuple[dt.datetime, dt.datetime]]] = field(default_factory=dict)
    by_username: dict[str, int] = field(init=False)
    by_team: dict[str, list[int]] = field(init=False)
    by_region: dict[str, list[int]] = field(init=False)

    def __post_init__(self) -> None:
        self._pools: dict[tuple[int, str | None, str, str], tuple[Pool, list[int]]] = {}
        self._away: tuple[dt.datetime, frozenset[int]] | None = None
        self._members: dict[tuple[int, str | None, str, str], tuple[Any, list[Any]]] = {}
        self.by_username = {rep.username: rep.id for rep in self.reps.values()}
        self.by_team, self.by_region = {}, {}
        for rep in sorted(self.reps.values(), key=lambda r: r.id):
            if not rep.is_rep:
                continue  # teams and regions give their reps; managers join a pool only by name
            if rep.team:
                self.by_team.setdefault(rep.team, []).append(rep.id)
            if rep.region:
                self.by_region.setdefault(rep.region, []).append(rep.id)

    def on_leave(self, user_id: int, at: dt.datetime) -> bool:
        return any(start <= at < end for start, end in self.leaves.get(user_id, ()))

    def away(self, at: dt.datetime) -> frozenset[int]:
        """Everyone on leave at `at` (leaves are few: one pass per decision, not one per candidate;
        a batch decides every lead at one moment, so the last answer is kept)."""
        last = self._away
        if last is not None and last[0] == at:
            return last[1]
        away = frozenset(u for u, spans in self.leaves.items() if any(s <= at < e for s, e in spans))
        self._away = (at, away)
        return away

    def pool(self, pool: Pool, facts: LeadFacts) -> list[int]:
        """The pool's members in id order; memoised per pool and lead region (a roster is a
        snapshot: it never changes under a decision)."""
        key = (id(pool), facts.region if pool.lead_region else None, "", "")
        cached = self._pools.get(key)
        if cached is None or cached[0] is not pool:
            cached = self._pools[key] = (pool, self._pool(pool, facts))
        return cached[1]

    def shortlist(self, pool: Pool, facts: LeadFacts, strategy: str) -> list[int]:
        """The members the strategy could keep at all — the lead's region for nearest_region, the
        lead's industry for specialty. Replays, which keep no trace of the dropped, walk only these."""
        if strategy not in ("nearest_region", "specialty"):
            return self.pool(pool, facts)
        narrowing = facts.region or "" if strategy == "nearest_region" else facts.industry
        key = (id(pool), facts.region if pool.lead_region else None, strategy, narrowing)
        cached = self._pools.get(key)
        if cached is None or cached[0] is not pool:
            reps = self.reps
            if strategy == "nearest_region":
                members = [
                    u for u in self.pool(pool, facts) if facts.region and reps[u].region == facts.region
                ]
            else:
                members = [
                    u
                    for u in self.pool(pool, facts)
                    if facts.industry and facts.industry in reps[u].specialties
                ]
            cached = self._pools[key] = (pool, members)
        return cached[1]

    def _pool(self, pool: Pool, facts: LeadFacts) -> list[int]:
        ids: set[int] = set()
        for team in pool.teams:
            ids.update(self.by_team.get(team, ()))
        for region in pool.regions:
            ids.update(self.by_region.get(region, ()))
        if pool.lead_region and facts.region:
            ids.update(self.by_region.get(facts.region, ()))
        for username in pool.users:
            if username in self.by_username:
                ids.add(self.by_username[username])
        return sorted(ids)


@dataclass
class Rotation:
    """A rule's rotation: the last rep it chose, how many leads it gave each rep, and the turn at
    which each rep was last served (keys are user ids)."""

    last_user_id: int | None = None
    counts: dict[int, int] = field(default_factory=dict)
    turns: int = 0
    served: dict[int, int] = field(default_factory=dict)

    def advance(self, user_id: int) -> None:
        self.last_user_id = user_id
        self.counts[user_id] = self.counts.get(user_id, 0) + 1
        self.turns += 1
        self.served[user_id] = self.turns

    def as_json(self) -> tuple[dict[str, int], dict[str, int]]:
        return {str(k): v for k, v in self.counts.items()}, {str(k): v for k, v in self.served.items()}

    @classmethod
    def from_json(
        cls, *, last_user_id: int | None, counts: dict[str, int], turns: int, served: dict[str, int]
    ) -> Rotation:
        return cls(
            last_user_id=last_user_id,
            counts={int(k): v for k, v in counts.items()},
            turns=turns,
            served={int(k): v for k, v in served.items()},
        )


class State(Protocol):
    def rotation(self, key: str) -> Rotation:
        """The rule's rotation, held (locked) until the decision is stored."""

    def loads(self, user_ids: list[int], at: dt.datetime) -> tuple[dict[int, int], dict[int, int]]:
        """(open leads, leads received today) per user."""

    def record(self, key: str, rotation: Rotation, user_id: int, at: dt.datetime) -> None:
        """The rule gave the lead to user_id: advance its rotation and the user's loads."""


@dataclass
class Decision:
    winner_id: int | None
    rule_id: str  # "" when nobody was eligible anywhere
    strategy: str
    method: str  # rule | fallback | pool
    trace: dict[str, Any]


_last_local: tuple[dt.datetime, dt.tzinfo, dt.datetime] | None = None


def _local(at: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """`at` in the organisation's zone; the last answer is kept, as a batch decides every lead at
    one moment (a conversion per decision was ~2% of routing an import)."""
    global _last_local
    last = _last_local
    if last is not None and last[0] is at and last[1] is tz:
        return last[2]
    local = at.astimezone(tz)
    _last_local = (at, tz, local)
    return local


def _checks(when: Conditions, facts: LeadFacts, local: dt.datetime) -> Iterator[tuple[str, Any, Any, bool]]:
    """Each condition as (field, expected, actual, held), lazily: an unmatched rule stops at the
    first condition that fails, which is also the one its trace shows."""
    if when.sources:
        yield "source", when.sources, facts.source, facts.source in when.sources
    if when.provinces:
        yield "province", when.provinces, facts.province, facts.province in when.provinces
    if when.regions:
        yield "region", when.regions, facts.region, facts.region in when.regions
    if when.industries:
        yield "industry", when.industries, facts.industry, facts.industry in when.industries
    if when.cities:
        yield "city", when.cities, facts.city, any(facts.city.startswith(c) for c in when.cities if c)
    for name, values in when.fields.items():
        actual = facts.fields.get(name)
        yield f"fields.{name}", values, actual, actual is not None and str(actual) in values
    if when.weekdays:
        yield "weekday", when.weekdays, local.isoweekday(), local.isoweekday() in when.weekdays
    if when.hours is not None:
        expected = f"{when.hours.start:%H:%M}-{when.hours.end:%H:%M}"
        yield "time", expected, f"{local:%H:%M}", when.hours.contains(local.time())


@dataclass(frozen=True, slots=True)
class _Test:
    """A rule's conditions made quick to test: sets instead of lists, None for "any"."""

    sources: frozenset[str] | None
    provinces: frozenset[str] | None
    regions: frozenset[str] | None
    industries: frozenset[str] | None
    cities: tuple[str, ...] | None
    fields: tuple[tuple[str, frozenset[str]], ...]
    weekdays: frozenset[int] | None
    hours: Any


_TESTS: dict[int, tuple[Conditions, _Test]] = {}


def _test_of(when: Conditions) -> _Test:
    cached = _TESTS.get(id(when))
    if cached is not None and cached[0] is when:
        return cached[1]
    test = _Test(
        sources=frozenset(when.sources) or None,
        provinces=frozenset(when.provinces) or None,
        regions=frozenset(when.regions) or None,
        industries=frozenset(when.industries) or None,
        cities=tuple(c for c in when.cities if c) if when.cities else None,
        fields=tuple((name, frozenset(values)) for name, values in when.fields.items()),
        weekdays=frozenset(when.weekdays) or None,
        hours=when.hours,
    )
    if len(_TESTS) > 20_000:
        _TESTS.clear()
    _TESTS[id(when)] = (when, test)
    return test


def _holds(when: Conditions, facts: LeadFacts, local: dt.datetime) -> bool:
    """Whether every condition holds — the same answer as _conditions, without its trace."""
    test = _test_of(when)
    if test.sources is not None and facts.source not in test.sources:
        return False
    if test.provinces is not None and facts.province not in test.provinces:
        return False
    if test.regions is not None and facts.region not in test.regions:
        return False
    if test.industries is not None and facts.industry not in test.industries:
        return False
    return _rest_holds(test, facts, local)


def _conditions(when: Conditions, facts: LeadFacts, local: dt.datetime) -> tuple[bool, list[dict[str, Any]]]:
    """Whether the rule's conditions hold, and the checks its trace shows: every check of a rule
    that matched; the first failing one of a rule that did not."""
    shown: list[dict[str, Any]] = []
    for name, expected, actual, ok in _checks(when, facts, local):
        shown.append({"field": name, "expected": expected, "actual": actual, "ok": ok})
        if not ok:
            return False, shown[-1:]
    return True, shown


def _off_hours(rep: Rep, local: dt.datetime) -> bool:
    if rep.work_days and local.isoweekday() not in rep.work_days:
        return True
    if rep.work_start is not None and rep.work_end is not None:
        now = local.time()
        if rep.work_start <= rep.work_end:
            return not (rep.work_start <= now < rep.work_end)
        return not (now >= rep.work_start or now < rep.work_end)
    return False


def _next_in_turn(eligible: list[int], rotation: Rotation) -> int:
    """The eligible rep served longest ago by this rule (never served first, then by id). With a
    fixed pool that is plain round-robin; when who is eligible changes from lead to lead (the lead's
    region, its industry, caps, leave) nobody is skipped and nobody served twice while an eligible
    colleague waits — the rotation cannot be pulled back to the lowest id by another region's lead."""
    served = rotation.served.get
    # min(eligible, key=(served, id)), written out: ~half the time, once per routed lead
    best, best_served = eligible[0], served(eligible[0], 0)
    for user_id in eligible:
        count = served(user_id, 0)
        if count < best_served or (count == best_served and user_id < best):
            best, best_served = user_id, count
    return best


def _candidates(
    routing: _Routing,
    definition: RuleSetDefinition,
    facts: LeadFacts,
    roster: Roster,
    state: State,
    local: dt.datetime,
    with_trace: bool = True,
    away: frozenset[int] = frozenset(),
) -> tuple[list[dict[str, Any]], list[int], dict[int, int], dict[int, int]]:
    strategy = routing.strategy.value
    pool_ids = (
        roster.pool(routing.pool, facts) if with_trace else roster.shortlist(routing.pool, facts, strategy)
    )
    open_leads, today = state.loads(pool_ids, facts.at) if pool_ids else ({}, {})
    max_open = routing.caps.max_open_leads or definition.defaults.max_open_leads
    max_new = routing.caps.max_new_per_day or definition.defaults.max_new_per_day
    hours_matter = definition.defaults.respect_working_hours
    listed: list[dict[str, Any]] = []
    eligible: list[int] = []
    reps = roster.reps
    for user_id in pool_ids:
        rep = reps[user_id]
        open_count, today_count = open_leads.get(user_id, 0), today.get(user_id, 0)
        rep_open = rep.max_open_leads or max_open
        rep_new = rep.max_new_per_day or max_new
        reason, detail = KEPT, ""
        if not rep.active:
            reason = DROP_INACTIVE
        elif user_id in away:
            reason = DROP_ON_LEAVE
        elif hours_matter and (rep.work_days or rep.work_start is not None) and _off_hours(rep, local):
            reason = DROP_OFF_HOURS
        elif rep_open is not None and open_count >= rep_open:
            reason, detail = DROP_OPEN_CAP, f"{open_count}/{rep_open}" if with_trace else ""
        elif rep_new is not None and today_count >= rep_new:
            reason, detail = DROP_DAILY_CAP, f"{today_count}/{rep_new}" if with_trace else ""
        elif strategy == "nearest_region" and (facts.region is None or rep.region != facts.region):
            reason = DROP_OTHER_REGION
            detail = f"{rep.region or '-'} ≠ {facts.region or '-'}" if with_trace else ""
        elif strategy == "specialty" and (not facts.industry or facts.industry not in rep.specialties):
            reason = DROP_NO_SPECIALTY
            detail = (",".join(sorted(rep.specialties)) or "-") if with_trace else ""
        elif strategy == "weighted" and rep.username not in routing.weights:
            reason = DROP_NO_WEIGHT
        if reason == KEPT:
            eligible.append(user_id)
        if not with_trace:
            continue
        listed.append(
            {
                "user_id": user_id,
                "kept": reason == KEPT,
                "reason": reason,
                "detail": detail,
                "open_leads": open_count,
                "new_today": today_count,
            }
        )
    return listed, eligible, open_leads, today


def _pick(
    routing: _Routing,
    eligible: list[int],
    rotation: Rotation,
    roster: Roster,
    open_leads: dict[int, int],
    today: dict[int, int],
) -> tuple[int, dict[str, Any]]:
    strategy = routing.strategy
    last = rotation.last_user_id
    if strategy == Strategy.WEIGHTED:
        served = rotation.served

        def share(user_id: int) -> tuple[float, int, int]:
            weight = routing.weights[roster.reps[user_id].username]
            given = rotation.counts.get(user_id, 0)
            # Smallest (given + 1) / weight first; ties to whoever was served longest ago.
            return ((given + 1) / weight, served.get(user_id, 0), user_id)

        winner = min(eligible, key=share)
        weight = routing.weights[roster.reps[winner].username]
        return winner, {
            "code": "weighted",
            "weight": weight,
            "given_before": rotation.counts.get(winner, 0),
            "total_weight": sum(routing.weights[roster.reps[u].username] for u in eligible),
        }
    if strategy == Strategy.LEAST_LOADED:
        fewest = min(open_leads.get(u, 0) for u in eligible)
        tied = [u for u in eligible if open_leads.get(u, 0) == fewest]
        fewest_today = min(today.get(u, 0) for u in tied)
        tied = [u for u in tied if today.get(u, 0) == fewest_today]
        winner = _next_in_turn(tied, rotation)
        return winner, {"code": "least_loaded", "open_leads": fewest, "tied": len(tied)}
    winner = _next_in_turn(eligible, rotation)
    previous = roster.reps.get(last) if last is not None else None
    return winner, {
        "code": "turn",
        "previous_user_id": last,
        "previous_name": previous.name if previous else None,
        "eligible": len(eligible),
    }


_Step = tuple[str, str, int | None, _Routing, Conditions | None, str]
_ORDERED: dict[int, tuple[RuleSetDefinition, list[_Step]]] = {}


def _ordered(definition: RuleSetDefinition) -> list[_Step]:
    """The rules in priority order, then the fallback — worked out once per definition (kept with a
    reference to it, so a recycled id can never serve another definition's order)."""
    cached = _ORDERED.get(id(definition))
    if cached is not None and cached[0] is definition:
        return cached[1]
    steps: list[_Step] = [
        (rule.id, rule.name, rule.priority, rule, rule.when, rule.strategy.value)
        for rule in definition.ordered_rules()
    ]
    steps.append(
        (
            "fallback",
            definition.fallback.name,
            None,
            definition.fallback,
            None,
            definition.fallback.strategy.value,
        )
    )
    if len(_ORDERED) > 256:
        _ORDERED.clear()
    _ORDERED[id(definition)] = (definition, steps)
    return steps


_APPLICABLE: dict[int, tuple[RuleSetDefinition, dict[tuple[Any, ...], list[tuple[_Step, _Test | None]]]]] = {}


def _applicable(definition: RuleSetDefinition, facts: LeadFacts) -> list[tuple[_Step, _Test | None]]:
    """The steps whose source, province, region and industry conditions the lead meets, in order,
    each with what is left to test (city, fields, weekday, time) — memoised per combination of those
    four facts, which a campaign's leads share. Only the quick path (replays) uses it."""
    cached = _APPLICABLE.get(id(definition))
    if cached is None or cached[0] is not definition:
        if len(_APPLICABLE) > 256:
            _APPLICABLE.clear()
        cached = _APPLICABLE[id(definition)] = (definition, {})
    key = (facts.source, facts.province, facts.region, facts.industry)
    steps = cached[1].get(key)
    if steps is None:
        steps = []
        for step in _ordered(definition):
            when = step[4]
            if when is None:
                steps.append((step, None))
                continue
            test = _test_of(when)
            if (
                (test.sources is not None and facts.source not in test.sources)
                or (test.provinces is not None and facts.province not in test.provinces)
                or (test.regions is not None and facts.region not in test.regions)
                or (test.industries is not None and facts.industry not in test.industries)
            ):
                continue
            dynamic = (
                test.cities is not None or test.fields or test.weekdays is not None or test.hours is not None
            )
            steps.append((step, test if dynamic else None))
        if len(cached[1]) > 50_000:
            cached[1].clear()
        cached[1][key] = steps
    return steps


def _rest_holds(test: _Test, facts: LeadFacts, local: dt.datetime) -> bool:
    """The conditions _applicable could not decide ahead: city, custom fields, weekday, time."""
    if test.cities is not None and not any(facts.city.startswith(c) for c in test.cities):
        return False
    for name, values in test.fields:
        actual = facts.fields.get(name)
        if actual is None or str(actual) not in values:
            return False
    if test.weekdays is not None and local.isoweekday() not in test.weekdays:
        return False
    return test.hours is None or test.hours.contains(local.time())


_Member = tuple[int, int | None, int | None, "Rep | None"]


def _members_quick(
    routing: _Routing, definition: RuleSetDefinition, facts: LeadFacts, roster: Roster, strategy: str
) -> list[_Member]:
    """The shortlist with what cannot change during a replay worked out once: inactive reps (and,
    for a weighted rule, reps without a weight) left out, each member's caps resolved, and the rep
    kept only when working hours need checking. Memoised on the roster."""
    narrowing = (
        (facts.region or "")
        if strategy == "nearest_region"
        else facts.industry
        if strategy == "specialty"
        else ""
    )
    key = (id(routing), facts.region if routing.pool.lead_region else None, strategy, narrowing)
    cached = roster._members.get(key)
    if cached is not None and cached[0] is routing:
        return cached[1]
    max_open = routing.caps.max_open_leads or definition.defaults.max_open_leads
    max_new = routing.caps.max_new_per_day or definition.defaults.max_new_per_day
    hours_matter = definition.defaults.respect_working_hours
    members: list[_Member] = []
    for user_id in roster.shortlist(routing.pool, facts, strategy):
        rep = roster.reps[user_id]
        if not rep.active or (strategy == "weighted" and rep.username not in routing.weights):
            continue
        keeps_hours = hours_matter and (bool(rep.work_days) or rep.work_start is not None)
        members.append(
            (
                user_id,
                rep.max_open_leads or max_open,
                rep.max_new_per_day or max_new,
                rep if keeps_hours else None,
            )
        )
    roster._members[key] = (routing, members)
    return members


def _eligible_quick(
    routing: _Routing,
    definition: RuleSetDefinition,
    facts: LeadFacts,
    roster: Roster,
    state: State,
    local: dt.datetime,
    away: frozenset[int],
) -> tuple[list[int], dict[int, int], dict[int, int]]:
    """_candidates' eligible list, with the same checks in the same order, and nothing recorded of
    those dropped."""
    members = _members_quick(routing, definition, facts, roster, routing.strategy.value)
    if not members:
        return [], {}, {}
    open_leads, today = state.loads([m[0] for m in members], facts.at)
    open_get, today_get = open_leads.get, today.get
    eligible: list[int] = []
    for user_id, open_cap, new_cap, hours_rep in members:
        if user_id in away:
            continue
        if hours_rep is not None and _off_hours(hours_rep, local):
            continue
        if open_cap is not None and open_get(user_id, 0) >= open_cap:
            continue
        if new_cap is not None and today_get(user_id, 0) >= new_cap:
            continue
        eligible.append(user_id)
    return eligible, open_leads, today


def _decide_quick(
    facts: LeadFacts, definition: RuleSetDefinition, roster: Roster, state: State, tz: dt.tzinfo
) -> Decision:
    """decide() without a trace: the same winner, found by walking only the rules the lead's static
    facts allow (property-tested against the traced path)."""
    local = _local(facts.at, tz)
    away = roster.away(facts.at) if roster.leaves else frozenset()
    for (rule_id, _name, _priority, routing, when, strategy), rest in _applicable(definition, facts):
        if rest is not None and not _rest_holds(rest, facts, local):
            continue
        key = rotation_key(rule_id)
        rotation = state.rotation(key)
        eligible, open_leads, today = _eligible_quick(routing, definition, facts, roster, state, local, away)
        if not eligible:
            continue
        winner_id, _why = _pick(routing, eligible, rotation, roster, open_leads, today)
        state.record(key, rotation, winner_id, facts.at)
        method = "fallback" if when is None else "rule"
        return Decision(winner_id=winner_id, rule_id=rule_id, strategy=strategy, method=method, trace={})
    return Decision(winner_id=None, rule_id="", strategy="", method="pool", trace={})


def rotation_key(rule_id: str) -> str:
    return f"rule:{rule_id}"


def not_reached_rule(rule_id: str, name: str, priority: int, strategy: str) -> dict[str, Any]:
    """A rule's entry in a trace when an earlier rule already won."""
    return {
        "id": rule_id,
        "name": name,
        "priority": priority,
        "strategy": strategy,
        "matched": None,
        "outcome": "not_reached",
        "conditions": [],
        "candidates": [],
    }


def decide(
    *,
    facts: LeadFacts,
    definition: RuleSetDefinition,
    roster: Roster,
    state: State,
    tz: dt.tzinfo,
    ruleset_ref: dict[str, Any],
    with_trace: bool = True,
) -> Decision:
    """Evaluate the rules in priority order; the first that matches and has an eligible candidate
    picks the winner by its strategy; otherwise the fallback; otherwise the lead waits in the pool.
    Every rule is in the trace — matched, not matched, or not reached. `with_trace=False` (the
    sandbox's replays, which only count outcomes) takes the quick path: same winner, no trace."""
    if not with_trace:
        return _decide_quick(facts, definition, roster, state, tz)
    local = _local(facts.at, tz)
    away = roster.away(facts.at)
    trace_rules: list[dict[str, Any]] = []
    winner_id: int | None = None
    chosen: tuple[str, str, str] = ("", "", "pool")
    why: dict[str, Any] | None = None
    for rule_id, name, priority, routing, when, strategy in _ordered(definition):
        if winner_id is not None:
            if not with_trace:
                break
            trace_rules.append(not_reached_rule(rule_id, name, priority, strategy))
            continue
        if when is None:
            matched, checks = True, []
        elif with_trace:
            matched, checks = _conditions(when, facts, local)
        else:
            matched, checks = _holds(when, facts, local), []
        entry: dict[str, Any] = {
            "id": rule_id,
            "name": name,
            "priority": priority,
            "strategy": strategy,
            "matched": matched,
            "conditions": checks,
            "candidates": [],
        }
        if with_trace:
            trace_rules.append(entry)
        if not matched:
            entry["outcome"] = "not_matched"
            continue
        key = rotation_key(rule_id)
        rotation = state.rotation(key)
        listed, eligible, open_leads, today = _candidates(
            routing, definition, facts, roster, state, local, with_trace, away
        )
        entry["candidates"] = listed
        if not eligible:
            entry["outcome"] = "no_candidate"
            continue
        winner_id, why = _pick(routing, eligible, rotation, roster, open_leads, today)
        state.record(key, rotation, winner_id, facts.at)
        entry["outcome"] = "winner"
        chosen = (rule_id, strategy, "fallback" if when is None else "rule")
        for candidate in listed:
            if candidate["user_id"] == winner_id:
                candidate["winner"] = True
    if not with_trace:
        return Decision(
            winner_id=winner_id, rule_id=chosen[0], strategy=chosen[1], method=chosen[2], trace={}
        )
    winner = roster.reps[winner_id] if winner_id is not None else None
    trace = {
        "ruleset": ruleset_ref,
        "lead": trace_lead(facts, local),
        "rules": trace_rules,
        **trace_end(chosen, winner, why),
    }
    return Decision(winner_id=winner_id, rule_id=chosen[0], strategy=chosen[1], method=chosen[2], trace=trace)


def trace_lead(facts: LeadFacts, local: dt.datetime) -> dict[str, Any]:
    """The lead's part of a trace: its facts, the moment in the organisation's zone."""
    return {
        "source": facts.source,
        "province": facts.province,
        "region": facts.region,
        "industry": facts.industry,
        "city": facts.city,
        "fields": facts.fields,
        "at": local.isoformat(),
    }


def trace_end(chosen: tuple[str, str, str], winner: Rep | None, why: dict[str, Any] | None) -> dict[str, Any]:
    """A trace's last keys: the rule that decided (rule id, strategy, method), and the winner with
    why they won."""
    return {
        "rule_id": chosen[0],
        "strategy": chosen[1],
        "method": chosen[2],
        "winner": (
            {"user_id": winner.id, "username": winner.username, "name": winner.name, "why": why}
            if winner is not None
            else None
        ),
    }
