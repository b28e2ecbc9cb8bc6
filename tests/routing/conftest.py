"""Routing fixtures: a rule set put in force directly (the publication path with its notice period
and simulation has its own tests in test_versions.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from salesloop.core import clock
from salesloop.routing.models import RuleSet, RuleSetStatus
from salesloop.routing.services import ruleset_create


def in_force(
    actor: Any, definition: dict[str, Any], *, since: dt.timedelta = dt.timedelta(minutes=1)
) -> RuleSet:
    ruleset = ruleset_create(actor=actor, definition=definition)
    RuleSet.objects.filter(pk=ruleset.pk).update(
        status=RuleSetStatus.PUBLISHED, effective_at=clock.now() - since, published_at=clock.now() - since
    )
    ruleset.refresh_from_db()
    return ruleset


def rule(
    rule_id: str, priority: int, *, when: dict | None = None, strategy: str = "round_robin", **pool: Any
) -> dict:
    extra = {}
    if "weights" in pool:
        extra["weights"] = pool.pop("weights")
    if "caps" in pool:
        extra["caps"] = pool.pop("caps")
    if pool.pop("pool_lead_region", False):
        pool["lead_region"] = True
    return {
        "id": rule_id,
        "name": f"规则 {rule_id}",
        "priority": priority,
        "when": when or {},
        "pool": pool,
        "strategy": strategy,
        **extra,
    }


def definition(*rules: dict, fallback: dict | None = None, **defaults: Any) -> dict:
    return {
        "name": "测试规则",
        "defaults": defaults,
        "rules": list(rules),
        "fallback": fallback or {"pool": {"regions": ["east", "south"]}, "strategy": "round_robin"},
    }


@pytest.fixture
def ruleset_in_force():
    return in_force
