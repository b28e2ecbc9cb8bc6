"""The demo organisation's routing (C8): a region round-robin in force for a month, a draft that
ranks industry above region while most specialty tags are blank (the source's incident, ready for
the sandbox to catch), a sales committee, a few specialty tags, and the pool's leads routed so their
pages can say why."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from salesloop.core import clock
from salesloop.crm.models import Lead, LeadStatus
from salesloop.demo.org import DemoOrg
from salesloop.routing.models import RepProfile, RuleSet, RuleSetStatus
from salesloop.routing.services import leads_route_bulk, policy_update, ruleset_create

REGION_ROUND_ROBIN = {
    "name": "按区域轮转",
    "description": "线索按客户所在省份归属区域，在该区域销售之间轮流分配。",
    "defaults": {"max_open_leads": 400, "max_new_per_day": 60, "respect_working_hours": True},
    "rules": [
        {
            "id": "by-region",
            "name": "本区域轮转",
            "priority": 10,
            "when": {},
            "pool": {"lead_region": True},
            "strategy": "round_robin",
        }
    ],
    "fallback": {
        "name": "全国兜底：负载最低者",
        "pool": {"regions": ["east", "south", "north", "northeast"]},
        "strategy": "least_loaded",
    },
}

INDUSTRY_FIRST = {
    **REGION_ROUND_ROBIN,
    "name": "行业优先（草稿）",
    "description": "先按行业专长匹配，再按区域轮转。注意：多数销售尚未填写专长标签。",
    "rules": [
        {
            "id": "by-industry",
            "name": "行业专长优先",
            "priority": 5,
            "when": {},
            "pool": {"regions": ["east", "south", "north", "northeast"]},
            "strategy": "specialty",
        },
        *REGION_ROUND_ROBIN["rules"],
    ],
}

# Two reps keep tags; everyone else's are blank — as in the source's incident.
DEMO_SPECIALTIES = {"rep_east_1": ["智能制造"], "rep_northeast_2": ["新能源"]}


@transaction.atomic
def demo_routing_ensure(org: DemoOrg) -> int:
    """Create the demo's routing if there is none yet; returns how many pool leads it routed."""
    if RuleSet.objects.exists():
        return 0
    admin = org.users["admin"]
    director = org.users["director"]
    policy_update(
        actor=admin,
        committee=[director, *(m for code in org.regions if (m := org.manager(code)) is not None)],
    )
    for username, tags in DEMO_SPECIALTIES.items():
        user = org.users.get(username)
        if user is not None:
            RepProfile.objects.get_or_create(user=user, defaults={"specialties": tags})
    live = ruleset_create(actor=director, definition=REGION_ROUND_ROBIN)
    month_ago = clock.now() - dt.timedelta(days=30)
    # Demo history: the version has been in force for a month (the real path — simulation, notice,
    # committee — is what the draft below is for).
    RuleSet.objects.filter(pk=live.pk).update(
        status=RuleSetStatus.PUBLISHED, effective_at=month_ago, published_at=month_ago, published_by=director
    )
    ruleset_create(actor=director, definition=INDUSTRY_FIRST, based_on=live)
    pool = list(
        Lead.objects.filter(owner__isnull=True, status=LeadStatus.OPEN)
        .order_by("-id")
        .values_list("id", flat=True)[:500]
    )
    return leads_route_bulk(lead_ids=pool)
