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
- a candidate is `[user_id, reason, detail, open_leads, new_today]`; `kept` is whether the reason is
  `eligible`, and the winner is the winning rule's candidate whose id is the winner's.

The lead's facts and the winner (with the names they had that moment) are kept as they were.
`unpack(pack(trace), definition) == trace` for every trace the engine makes (tests/routing). A
stored trace without `packed` (manual reassignments, traces written before) is already public.
"""

from __future__ import annotations

from typing import Any

from salesloop.routing.engine import KEPT, not_reached_rule
from salesloop.routing.ruleset import RuleSetDefinition

PACKED = 1


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
                    [c["user_id"], c["reason"], c["detail"], c["open_leads"], c["new_today"]]
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
    if not stored or stored.get("packed") != PACKED:
        return stored
    steps = _steps(definition)
    known = {step[0]: step for step in steps}
    winner = (stored.get("winner") or {}).get("user_id")
    rules: list[dict[str, Any]] = []
    for rule_id, matched, outcome, conditions, candidates in stored["rules"]:
        _id, name, priority, strategy = known.get(rule_id, (rule_id, rule_id, None, ""))
        listed = []
        for user_id, reason, detail, open_leads, new_today in candidates:
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
