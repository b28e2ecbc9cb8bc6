"""The engine's quick paths give the answers of its traced path (replays use the quick ones)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from salesloop.routing.engine import LeadFacts, Rep, Roster, _conditions, _holds, decide
from salesloop.routing.ruleset import Conditions, parse
from salesloop.routing.state import MemoryState

TZ = ZoneInfo("Asia/Shanghai")
PROVINCES = ["31", "32", "44", "21"]
REGIONS = ["east", "south", "northeast"]
INDUSTRIES = ["制造业", "零售", "金融", ""]
SOURCES = ["douyin", "web_form", "call_400"]

facts_strategy = st.builds(
    LeadFacts,
    lead_id=st.integers(1, 10_000),
    source=st.sampled_from(SOURCES),
    province=st.sampled_from([*PROVINCES, None]),
    region=st.sampled_from([*REGIONS, None]),
    industry=st.sampled_from(INDUSTRIES),
    city=st.sampled_from(["", "深圳", "深圳南山", "杭州"]),
    fields=st.dictionaries(st.sampled_from(["budget", "size"]), st.sampled_from(["high", "low"]), max_size=2),
    at=st.datetimes(
        min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 12, 31), timezones=st.just(dt.UTC)
    ),
)
conditions_strategy = st.fixed_dictionaries(
    {},
    optional={
        "sources": st.lists(st.sampled_from(SOURCES), max_size=2),
        "provinces": st.lists(st.sampled_from(PROVINCES), max_size=2),
        "regions": st.lists(st.sampled_from(REGIONS), max_size=2),
        "industries": st.lists(st.sampled_from(INDUSTRIES[:3]), max_size=2),
        "cities": st.lists(st.sampled_from(["深圳", "杭州"]), max_size=2),
        "fields": st.dictionaries(
            st.sampled_from(["budget"]), st.lists(st.sampled_from(["high", "low"]), max_size=2), max_size=1
        ),
        "weekdays": st.lists(st.integers(1, 7), max_size=3),
        "hours": st.sampled_from([{"from": "09:00", "to": "18:00"}, {"from": "20:00", "to": "08:00"}]),
    },
)


@settings(max_examples=300, deadline=None)
@given(when=conditions_strategy, facts=facts_strategy)
def test_the_quick_test_of_conditions_agrees_with_the_traced_one(when, facts):
    conditions = Conditions.model_validate(when)
    local = facts.at.astimezone(TZ)
    assert _holds(conditions, facts, local) == _conditions(conditions, facts, local)[0]


REPS = {
    n: Rep(
        id=n,
        username=f"r{n}",
        name=f"R{n}",
        region=REGIONS[n % 3],
        team=f"t{n % 2}",
        active=n != 7,
        is_rep=True,
        specialties=frozenset([INDUSTRIES[n % 3]]) if n % 2 else frozenset(),
        max_open_leads=3 if n == 4 else None,
    )
    for n in range(1, 13)
}
DEFINITION = parse(
    {
        "name": "p",
        "rules": [
            {
                "id": "spec",
                "name": "s",
                "priority": 1,
                "when": {"sources": ["douyin"]},
                "pool": {"teams": ["t0", "t1"]},
                "strategy": "specialty",
            },
            {
                "id": "near",
                "name": "n",
                "priority": 2,
                "when": {"sources": ["web_form"]},
                "pool": {"regions": REGIONS},
                "strategy": "nearest_region",
            },
            {
                "id": "own",
                "name": "o",
                "priority": 3,
                "when": {},
                "pool": {"lead_region": True},
                "strategy": "round_robin",
            },
        ],
        "fallback": {"pool": {"regions": REGIONS}, "strategy": "least_loaded"},
    }
)


@settings(max_examples=60, deadline=None)
@given(leads=st.lists(facts_strategy, min_size=1, max_size=40))
def test_a_replay_without_trace_decides_exactly_as_with_it(leads):
    traced, quick = MemoryState(), MemoryState()
    roster = Roster(reps=REPS)
    for facts in sorted(leads, key=lambda f: f.at):
        a = decide(facts=facts, definition=DEFINITION, roster=roster, state=traced, tz=TZ, ruleset_ref={})
        b = decide(
            facts=facts,
            definition=DEFINITION,
            roster=roster,
            state=quick,
            tz=TZ,
            ruleset_ref={},
            with_trace=False,
        )
        assert (a.winner_id, a.rule_id, a.method) == (b.winner_id, b.rule_id, b.method)
