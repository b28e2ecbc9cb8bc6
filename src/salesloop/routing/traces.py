"""How a rule-made routing trace is stored: packed, and unpacked into the public `assignment`
explanation (routing.explanations, version 1) wherever it is read.

A trace repeats, for every lead, what the rule-set version already says — each rule's name,
priority and strategy, and every rule after the winner as "not reached" — and spells out each
candidate and condition as an object with its keys. A million imported leads stored 2.1 GB of
traces that way (~2 KB each), more than every other table together, and writing them was a fifth
of the import's time (measured). Packed, a trace keeps only what the decision itself found:

    {"kind": "assignment", "version": 1, "packed": 1,
     "ruleset": {id, version, name, arm}, "lead": {...}, "rule_id", "strategy", "method",
     "winner": {user_id, username, name, why},
     "rules": [[rule id, matched, outcome, conditions, candidates], ...]}

- `rules` holds the rules evaluated, in order: every rule up to the winner, or every rule when
  nobody was eligible. The rules after the winner were not reached; unpacking lists them from the
  version's definition (immutable once published), as it takes every rule's name, priority and
  strategy from there.
- a condition is `[field, expected, actual, ok]`;
- a candidate is `[user_id, reason, detail, open_leads, new_today]`, or `[user_id, open_leads,
  new_today]` when they were kept (`eligible`, no detail) — most candidates of most leads; `kept`
  is whether the reason is `eligible`, and the winner is the winning rule's candidate whose id is
  the winner's. (Version 1 spelled every candidate out; it is read as before.)

The lead's facts and the winner (with the names they had that moment) are kept as they were.
`unpack(pack(trace), definition) == trace` for every trace the engine makes (tests/routing). A
stored trace without `packed` (manual reassignments, traces written before) is already public.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from salesloop.core import explanations
from salesloop.routing import engine
from salesloop.routing.engine import KEPT, not_reached_rule
from salesloop.routing.ruleset import RuleSetDefinition
from salesloop.routing.state import MemoryState

PACKED = 2  # the version `pack` writes; `unpack` reads every one
PACKED_VERSIONS = frozenset({1, 2})


def pack(stamped: dict[str, Any]) -> dict[str, Any]:
    """A stamped rule trace (`explanations.stamp("assignment", decision.trace)`) in its stored form."""
    rules = []
    for rule in stamped["rules"]:
        if rule["outcome"] == "not_reached":
            break  # and so is every rule after it
        rules.append(
            [
                rule["id"],
                rule["matched"],
                rule["outcome"],
                [[c["field"], c["expected"], c["actual"], c["ok"]] for c in rule["conditions"]],
                [
                    [c["user_id"], c["open_leads"], c["new_today"]]
                    if c["reason"] == KEPT and not c["detail"]
                    else [c["user_id"], c["reason"], c["detail"], c["open_leads"], c["new_today"]]
                    for c in rule["candidates"]
                ],
            ]
        )
    return {**stamped, "packed": PACKED, "rules": rules}


def _steps(definition: RuleSetDefinition | None) -> list[tuple[str, str, int | None, str]]:
    if definition is None:
        return []
    steps = [(r.id, r.name, r.priority, r.strategy.value) for r in definition.ordered_rules()]
    fallback = definition.fallback
    steps.append(("fallback", fallback.name, None, fallback.strategy.value))
    return steps


def unpack(stored: dict[str, Any], definition: RuleSetDefinition | None) -> dict[str, Any]:
    """The public explanation of a stored trace; `definition` is the version's that decided it
    (None if it is gone: the rules evaluated are then shown under their ids, and no rule as not
    reached)."""
    if not stored or stored.get("packed") not in PACKED_VERSIONS:
        return stored
    steps = _steps(definition)
    known = {step[0]: step for step in steps}
    winner = (stored.get("winner") or {}).get("user_id")
    rules: list[dict[str, Any]] = []
    for rule_id, matched, outcome, conditions, candidates in stored["rules"]:
        _id, name, priority, strategy = known.get(rule_id, (rule_id, rule_id, None, ""))
        listed = []
        for packed in candidates:
            if len(packed) == 3:
                (user_id, open_leads, new_today), reason, detail = packed, KEPT, ""
            else:
                user_id, reason, detail, open_leads, new_today = packed
            candidate = {
                "user_id": user_id,
                "kept": reason == KEPT,
                "reason": reason,
                "detail": detail,
                "open_leads": open_leads,
                "new_today": new_today,
            }
            if outcome == "winner" and user_id == winner:
                candidate["winner"] = True
            listed.append(candidate)
        rules.append(
            {
                "id": rule_id,
                "name": name,
                "priority": priority,
                "strategy": strategy,
                "matched": matched,
                "conditions": [
                    {"field": f, "expected": expected, "actual": actual, "ok": ok}
                    for f, expected, actual, ok in conditions
                ],
                "candidates": listed,
                "outcome": outcome,
            }
        )
    evaluated = {rule["id"] for rule in rules}
    for rule_id, name, priority, strategy in steps:
        if rule_id not in evaluated:
            rules.append(not_reached_rule(rule_id, name, priority, strategy))
    public = {key: value for key, value in stored.items() if key != "packed"}
    public["rules"] = rules
    return public


# What a rule's candidate list is made of before the loads are known: (user id, the reason a check
# before the caps drops them for — inactive, on leave, off hours — or None, their open-leads cap,
# their daily cap, and the reason and detail they get if no cap drops them).
_Member = tuple[int, str | None, int | None, int | None, str, str]
# A rule as a lead with given static facts meets it: (rule id, routing, strategy, rotation key,
# fallback or not, matched, its packed conditions, its members — None when it did not match).
_Met = tuple[str, Any, str, str, bool, bool, list[list[Any]], list[_Member] | None]


class PackedDecisions:
    """`engine.decide` for a batch that stores every trace packed at once (an import chunk, a burst
    of webhooks): the same decisions, the same changes to the state, and for each one the text of
    `orjson.dumps(pack(explanations.stamp("assignment", decision.trace)))` — made without the
    trace's ~60 objects and their packing, ~¾ of routing an imported lead (measured).

    What does not change from lead to lead is worked out once per combination of the lead's
    facts and the moment (`facts.at`, one per batch): which rules match with the conditions their
    trace shows, the lead's part of the trace, and each rule's candidates with every check that
    the loads do not decide. Per lead only the loads are read, the caps checked and the winner
    picked, as `_candidates` and `_pick` do. tests/routing/test_traces.py holds it to the traced
    path, byte for byte, over every strategy, condition, cap and leave."""

    def __init__(
        self,
        *,
        definition: RuleSetDefinition,
        roster: engine.Roster,
        state: MemoryState,
        tz: dt.tzinfo,
        ruleset_ref: dict[str, Any],
    ) -> None:
        self._definition, self._roster, self._state, self._tz = definition, roster, state, tz
        self._head = {
            "kind": "assignment",
            "version": explanations.version_of("assignment"),
            "ruleset": ruleset_ref,
        }
        self._met: dict[tuple[Any, ...], tuple[dict[str, Any], list[_Met]]] = {}

    def decide(self, facts: engine.LeadFacts) -> tuple[engine.Decision, str]:
        """The decision (its `trace` left empty) and its stored trace as JSON text."""
        key = (
            facts.source,
            facts.province,
            facts.region,
            facts.industry,
            facts.city,
            tuple(facts.fields.items()) if facts.fields else (),
            facts.at,
        )
        met = self._met.get(key)
        if met is None:
            if len(self._met) > 10_000:
                self._met.clear()
            met = self._met[key] = self._meet(facts)
        lead, steps = met
        state = self._state
        open_of, received = state.open_leads.get, state.received.get
        day = state.day(facts.at)
        rules: list[list[Any]] = []
        winner_id: int | None = None
        chosen: tuple[str, str, str] = ("", "", "pool")
        why: dict[str, Any] | None = None
        for rule_id, routing, strategy, rotation_key, fallback, matched, conditions, members in steps:
            if members is None:
                rules.append([rule_id, matched, "not_matched", conditions, []])
                continue
            rotation = state.rotation(rotation_key)
            listed: list[list[Any]] = []
            eligible: list[int] = []
            for user_id, dropped, open_cap, new_cap, reason, detail in members:
                open_count, today_count = open_of(user_id, 0), received((user_id, day), 0)
                if dropped is not None:
                    reason, detail = dropped, ""
                elif open_cap is not None and open_count >= open_cap:
                    reason, detail = engine.DROP_OPEN_CAP, f"{open_count}/{open_cap}"
                elif new_cap is not None and today_count >= new_cap:
                    reason, detail = engine.DROP_DAILY_CAP, f"{today_count}/{new_cap}"
                elif reason == KEPT:
                    eligible.append(user_id)
                    if not detail:  # as `pack` writes a kept candidate
                        listed.append([user_id, open_count, today_count])
                        continue
                listed.append([user_id, reason, detail, open_count, today_count])
            if not eligible:
                rules.append([rule_id, matched, "no_candidate", conditions, listed])
                continue
            if strategy == "least_loaded":
                loads = {u: open_of(u, 0) for u in eligible}, {u: received((u, day), 0) for u in eligible}
            else:
                loads = ({}, {})  # the other strategies do not read them
            winner_id, why = engine._pick(routing, eligible, rotation, self._roster, *loads)
            state.record(rotation_key, rotation, winner_id, facts.at)
            rules.append([rule_id, matched, "winner", conditions, listed])
            chosen = (rule_id, strategy, "fallback" if fallback else "rule")
            break
        winner = self._roster.reps[winner_id] if winner_id is not None else None
        stored = {
            **self._head,
            "lead": lead,
            "rules": rules,
            **engine.trace_end(chosen, winner, why),
            "packed": PACKED,
        }
        decision = engine.Decision(
            winner_id=winner_id, rule_id=chosen[0], strategy=chosen[1], method=chosen[2], trace={}
        )
        return decision, orjson.dumps(stored).decode()

    def _meet(self, facts: engine.LeadFacts) -> tuple[dict[str, Any], list[_Met]]:
        """What `decide` finds of the lead before the loads: its part of the trace, and every rule
        in order with whether it matches, the conditions shown and the candidates' fixed checks."""
        local = engine._local(facts.at, self._tz)
        away = self._roster.away(facts.at)
        lead = engine.trace_lead(facts, local)
        steps: list[_Met] = []
        for rule_id, _name, _priority, routing, when, strategy in engine._ordered(self._definition):
            if when is None:
                matched, checks = True, []
            else:
                matched, checks = engine._conditions(when, facts, local)
            conditions = [[c["field"], c["expected"], c["actual"], c["ok"]] for c in checks]
            members = self._members(routing, strategy, facts, local, away) if matched else None
            key = engine.rotation_key(rule_id)
            steps.append((rule_id, routing, strategy, key, when is None, matched, conditions, members))
        return lead, steps

    def _members(
        self, routing: Any, strategy: str, facts: engine.LeadFacts, local: dt.datetime, away: frozenset[int]
    ) -> list[_Member]:
        """`engine._candidates`' checks, in its order, less the two that read the loads."""
        defaults = self._definition.defaults
        max_open = routing.caps.max_open_leads or defaults.max_open_leads
        max_new = routing.caps.max_new_per_day or defaults.max_new_per_day
        hours_matter = defaults.respect_working_hours
        members: list[_Member] = []
        reps = self._roster.reps
        for user_id in self._roster.pool(routing.pool, facts):
            rep = reps[user_id]
            dropped: str | None = None
            if not rep.active:
                dropped = engine.DROP_INACTIVE
            elif user_id in away:
                dropped = engine.DROP_ON_LEAVE
            elif hours_matter and (rep.work_days or rep.work_start is not None):
                dropped = engine.DROP_OFF_HOURS if engine._off_hours(rep, local) else None
            reason, detail = KEPT, ""
            if strategy == "nearest_region" and (facts.region is None or rep.region != facts.region):
                reason = engine.DROP_OTHER_REGION
                detail = f"{rep.region or '-'} ≠ {facts.region or '-'}"
            elif strategy == "specialty" and (not facts.industry or facts.industry not in rep.specialties):
                reason = engine.DROP_NO_SPECIALTY
                detail = ",".join(sorted(rep.specialties)) or "-"
            elif strategy == "weighted" and rep.username not in routing.weights:
                reason = engine.DROP_NO_WEIGHT
            open_cap, new_cap = rep.max_open_leads or max_open, rep.max_new_per_day or max_new
            members.append((user_id, dropped, open_cap, new_cap, reason, detail))
        return members
