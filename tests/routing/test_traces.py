"""Rule traces are stored packed (routing.traces) and read back as the public explanation, exactly."""

from __future__ import annotations

import dataclasses
import datetime as dt

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from salesloop.core import explanations
from salesloop.routing import traces
from salesloop.routing.engine import LeadFacts, Rep, Roster, decide
from salesloop.routing.ruleset import parse
from salesloop.routing.state import MemoryState

from .test_engine_properties import REGIONS, TZ, facts_strategy

REPS = {
    n: Rep(
        id=n,
        username=f"r{n}",
        name=f"销售{n}",
        region=REGIONS[n % 3],
        team=f"t{n % 2}",
        active=n != 7,
        is_rep=True,
        specialties=frozenset(["制造业"]) if n % 2 else frozenset(),
        max_open_leads=2 if n in (4, 5) else None,
        max_new_per_day=3 if n == 6 else None,
        work_days=frozenset({1, 2, 3, 4, 5}) if n == 8 else frozenset(),
    )
    for n in range(1, 10)
}
# Every strategy, every kind of condition, a cap, and rules that leave leads to the fallback.
DEFINITION = parse(
    {
        "name": "全部规则",
        "defaults": {"respect_working_hours": True},
        "rules": [
            {
                "id": "douyin-sz",
                "name": "抖音深圳",
                "priority": 5,
                "when": {
                    "sources": ["douyin"],
                    "cities": ["深圳"],
                    "hours": {"from": "09:00", "to": "18:00"},
                },
                "pool": {"teams": ["t0", "t1"]},
                "strategy": "specialty",
            },
            {
                "id": "budget",
                "name": "预算高",
                "priority": 10,
                "when": {"fields": {"budget": ["high"]}, "weekdays": [1, 2, 3, 4, 5]},
                "pool": {"users": ["r1", "r2", "r3"]},
                "strategy": "weighted",
                "weights": {"r1": 3, "r2": 1},
            },
            {
                "id": "near",
                "name": "就近",
                "priority": 20,
                "when": {"sources": ["web_form"]},
                "pool": {"regions": REGIONS},
                "strategy": "nearest_region",
                "caps": {"max_open_leads": 4},
            },
            {
                "id": "own",
                "name": "本区轮转",
                "priority": 30,
                "when": {"regions": ["east", "south"]},
                "pool": {"lead_region": True},
                "strategy": "round_robin",
            },
        ],
        "fallback": {"name": "兜底", "pool": {"teams": ["t1"]}, "strategy": "least_loaded"},
    }
)
REF = {"id": 3, "version": 3, "name": "全部规则", "arm": ""}


@settings(max_examples=80, deadline=None)
@given(leads=st.lists(facts_strategy, min_size=1, max_size=30), on_leave=st.sets(st.sampled_from([1, 2, 3])))
def test_a_packed_trace_unpacks_to_the_trace_the_engine_made(leads, on_leave):
    """Whatever rule wins (or none, when caps and leave empty every pool), the stored form read
    back through JSON is the engine's trace, key for key — and smaller."""
    far = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    leaves = {u: [(dt.datetime(2000, 1, 1, tzinfo=dt.UTC), far)] for u in on_leave}
    roster, state = Roster(reps=REPS, leaves=leaves), MemoryState()
    outcomes = set()
    for facts in sorted(leads, key=lambda f: f.at):
        decision = decide(
            facts=facts, definition=DEFINITION, roster=roster, state=state, tz=TZ, ruleset_ref=REF
        )
        stamped = explanations.stamp("assignment", decision.trace)
        stored = orjson.dumps(traces.pack(stamped))
        assert traces.unpack(orjson.loads(stored), DEFINITION) == stamped
        assert len(stored) < len(orjson.dumps(stamped))
        explanations.validate(traces.unpack(orjson.loads(stored), DEFINITION))
        outcomes.add(decision.method)
    assert outcomes <= {"rule", "fallback", "pool"}


@settings(max_examples=120, deadline=None)
@given(
    leads=st.lists(st.tuples(facts_strategy, st.integers(0, 2)), min_size=1, max_size=40),
    moments=st.lists(
        st.datetimes(
            min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 12, 31), timezones=st.just(dt.UTC)
        ),
        min_size=3,
        max_size=3,
    ),
    on_leave=st.sets(st.sampled_from([1, 2, 3])),
    open_before=st.dictionaries(st.sampled_from(sorted(REPS)), st.integers(0, 5)),
)
def test_a_batch_stores_exactly_the_packed_trace_of_the_traced_path(leads, moments, on_leave, open_before):
    """Given leads decided a batch at a time (many at one moment, so what `PackedDecisions` works
    out once per combination of facts is reused while caps fill up and rotations turn), when one
    state goes through `decide` and another through `PackedDecisions`, then every decision and
    every stored trace is the same, byte for byte, and so are the states afterwards."""
    far = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    leaves = {u: [(dt.datetime(2000, 1, 1, tzinfo=dt.UTC), far)] for u in on_leave}
    roster = Roster(reps=REPS, leaves=leaves)
    traced, batched = MemoryState(open_leads=open_before, tz=TZ), MemoryState(open_leads=open_before, tz=TZ)
    decisions = traces.PackedDecisions(
        definition=DEFINITION, roster=roster, state=batched, tz=TZ, ruleset_ref=REF
    )
    for facts, moment in leads:
        facts = dataclasses.replace(facts, at=moments[moment])
        expected = decide(
            facts=facts, definition=DEFINITION, roster=roster, state=traced, tz=TZ, ruleset_ref=REF
        )
        decision, stored = decisions.decide(facts)
        assert (decision.winner_id, decision.rule_id, decision.strategy, decision.method) == (
            expected.winner_id,
            expected.rule_id,
            expected.strategy,
            expected.method,
        )
        assert stored == orjson.dumps(traces.pack(explanations.stamp("assignment", expected.trace))).decode()
    assert batched.open_leads == traced.open_leads
    assert batched.received == traced.received
    assert batched.rotations == traced.rotations
    assert batched.used_keys == traced.used_keys


def test_every_rule_after_the_winner_is_read_from_the_version_not_stored():
    lead = LeadFacts(
        lead_id=1, source="web_form", province="31", region="east", industry="", city="", fields={},
        at=dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC),
    )  # fmt: skip
    decision = decide(
        facts=lead,
        definition=DEFINITION,
        roster=Roster(reps=REPS),
        state=MemoryState(),
        tz=TZ,
        ruleset_ref=REF,
    )
    stamped = explanations.stamp("assignment", decision.trace)
    packed = traces.pack(stamped)
    assert decision.rule_id == "near"
    assert [rule[0] for rule in packed["rules"]] == ["douyin-sz", "budget", "near"]
    unpacked = traces.unpack(packed, DEFINITION)
    assert [(r["id"], r["name"], r["outcome"]) for r in unpacked["rules"]][-2:] == [
        ("own", "本区轮转", "not_reached"),
        ("fallback", "兜底", "not_reached"),
    ]
    # Without the version (gone), the rules evaluated still read, under their ids.
    orphan = traces.unpack(packed, None)
    assert [r["id"] for r in orphan["rules"]] == ["douyin-sz", "budget", "near"]
    assert orphan["rules"][2]["candidates"] == unpacked["rules"][2]["candidates"]


def test_a_trace_stored_before_packing_reads_as_it_was():
    manual = {"kind": "assignment", "version": 1, "rules": [], "method": "manual", "winner": None}
    assert traces.unpack(manual, DEFINITION) is manual


def test_a_trace_packed_before_kept_candidates_were_shortened_reads_as_it_was():
    """Version 1 spelled every candidate out, `[user_id, reason, detail, open, new today]`; version
    2 writes a kept one as `[user_id, open, new today]`. Both read as the same explanation."""
    lead = LeadFacts(
        lead_id=3, source="douyin", province="44", region="south", industry="制造业", city="深圳", fields={},
        at=dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC),
    )  # fmt: skip
    decision = decide(
        facts=lead, definition=DEFINITION, roster=Roster(reps=REPS), state=MemoryState(open_leads={2: 4}),
        tz=TZ, ruleset_ref=REF,
    )  # fmt: skip
    stamped = explanations.stamp("assignment", decision.trace)
    packed = traces.pack(stamped)
    kept = [c for rule in stamped["rules"] for c in rule["candidates"] if c["kept"]]
    shortened = [c for rule in packed["rules"] for c in rule[4] if len(c) == 3]
    assert kept and len(shortened) == len(kept)
    assert [c["open_leads"] for c in kept] == [c[1] for c in shortened]
    version_1 = {
        **packed,
        "packed": 1,
        "rules": [
            [
                rule_id,
                matched,
                outcome,
                conditions,
                [c if len(c) == 5 else [c[0], "eligible", "", *c[1:]] for c in listed],
            ]
            for rule_id, matched, outcome, conditions, listed in packed["rules"]
        ],
    }
    assert traces.unpack(version_1, DEFINITION) == traces.unpack(packed, DEFINITION) == stamped
    assert len(orjson.dumps(packed)) < len(orjson.dumps(version_1))


def test_a_lead_nobody_could_take_unpacks_with_every_rule_evaluated():
    everyone_away = {
        u: [(dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2030, 1, 1, tzinfo=dt.UTC))] for u in REPS
    }
    lead = LeadFacts(
        lead_id=2, source="douyin", province="44", region="south", industry="制造业", city="深圳", fields={},
        at=dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC),
    )  # fmt: skip
    decision = decide(
        facts=lead, definition=DEFINITION, roster=Roster(reps=REPS, leaves=everyone_away),
        state=MemoryState(), tz=TZ, ruleset_ref=REF,
    )  # fmt: skip
    stamped = explanations.stamp("assignment", decision.trace)
    assert decision.method == "pool"
    assert traces.unpack(orjson.loads(orjson.dumps(traces.pack(stamped))), DEFINITION) == stamped
