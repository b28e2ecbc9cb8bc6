"""C8.6 / issue 4 item 8: the source's incident, caught by the sandbox before go-live.

A region round-robin is in force. A campaign brings leads that mostly share phone numbers, from
广东 and from the north-east. A new version ranks industry-to-specialty matching above the region
rule while most reps' specialty tags are blank: the few tagged reps get every lead of their
industry from anywhere in the country — one rep ends up with most of their numbers from 广东,
another with most from the north-east. The simulation must show the collapse of region matching
and the province concentration, and publication must refuse the version without an override.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.core.exceptions import ValidationError

from salesloop.core import clock
from salesloop.notify.models import Notification
from salesloop.routing import services
from salesloop.routing.models import Assignment, RepProfile, RuleSetStatus
from salesloop.routing.sandbox import simulate_start
from tests.factories import contact_make, customer_make, lead_make, region_make, user_make
from tests.routing.conftest import definition, in_force, rule

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)
EDUCATION, MEDICAL, EQUIPMENT = "教育培训", "医疗器械", "工业设备"
REGION_OF = {
    **dict.fromkeys(["31", "32", "33"], "east"),
    **dict.fromkeys(["44", "45", "46"], "south"),
    **dict.fromkeys(["21", "22", "23"], "northeast"),
}


def campaign_leads(province_plan: list[str], industry: str, per_phone: int) -> list[tuple[str, str, int]]:
    """(province, industry, person) for leads of one campaign: each person (phone) sends per_phone
    leads, all from one customer."""
    return [(province, industry, i // per_phone) for i, province in enumerate(province_plan)]


@pytest.fixture
def incident(org):
    clock.set_now(NOW)
    northeast = region_make("northeast", "东北", ["21", "22", "23"])
    sam = user_make("rep", org.south, username="sam")
    nora = user_make("rep", northeast, username="nora")
    user_make("rep", northeast, username="ned")
    # most specialty tags are blank: only alice (east) and sam (south) are tagged
    RepProfile.objects.create(user=org.alice, specialties=[EDUCATION])
    RepProfile.objects.create(user=sam, specialties=[MEDICAL])
    regions = ["east", "south", "northeast"]
    current = in_force(
        org.admin,
        definition(
            rule("by-region", 20, lead_region=True),
            fallback={"pool": {"regions": regions}, "strategy": "round_robin"},
        ),
    )
    candidate = services.ruleset_create(
        actor=org.director,
        definition=definition(
            rule("by-industry", 10, strategy="specialty", regions=regions),
            rule("by-region", 20, lead_region=True),
            fallback={"pool": {"regions": regions}, "strategy": "round_robin"},
        ),
    )
    # the campaign: 44 广东 education leads from 22 phones, 30 north-east medical leads from 10
    # phones (mostly 辽宁); and the usual leads of every region, each its own person
    people = campaign_leads(["44"] * 44, EDUCATION, per_phone=2)
    people += [
        (p, industry, n + 100)
        for p, industry, n in campaign_leads(["21"] * 24 + ["22"] * 3 + ["23"] * 3, MEDICAL, 3)
    ]
    usual = ["31", "32", "33"] * 12 + ["44", "45", "46"] * 10 + ["21", "22", "23"] * 8
    people += [(p, EQUIPMENT, 1000 + i) for i, p in enumerate(usual)]
    random.Random(8).shuffle(people)
    customers: dict[int, tuple] = {}
    start = NOW - dt.timedelta(days=30)
    leads = []
    for i, (province, industry, person) in enumerate(people):
        if person not in customers:
            customer = customer_make(province=province, industry=industry)
            customers[person] = (customer, contact_make(customer=customer))
        customer, contact = customers[person]
        leads.append(
            lead_make(customer=customer, contact=contact, created_at=start + dt.timedelta(hours=4 * i))
        )
    return {
        "current": current,
        "candidate": candidate,
        "people": people,
        "leads": leads,
        "sam": sam,
        "nora": nora,
    }


def test_the_sandbox_catches_the_incident_before_go_live(org, incident):
    people, candidate = incident["people"], incident["candidate"]
    total = len(people)
    # what the leads are, counted from the data
    guangdong_education = sum(1 for p, industry, _ in people if p == "44" and industry == EDUCATION)
    northeast_medical = [p for p, industry, _ in people if industry == MEDICAL]
    liaoning_medical = northeast_medical.count("21")
    # the only tagged reps are in east (education) and south (medical): every lead of those
    # industries leaves its region under the candidate; every other lead stays in its region
    leaving = sum(
        1
        for p, industry, _ in people
        if (industry == EDUCATION and REGION_OF[p] != "east")
        or (industry == MEDICAL and REGION_OF[p] != "south")
    )
    assert leaving == guangdong_education + len(northeast_medical)

    # when: a director simulates the candidate over the last 90 days
    report = simulate_start(actor=org.director, ruleset=candidate)

    # then: the replay ran over every lead of the window and touched none of them
    assert report.status == "done", report.error
    assert report.leads_total == report.leads_done == total
    assert Assignment.objects.count() == 0
    metrics = report.metrics
    current, proposed = metrics["current"], metrics["candidate"]
    assert metrics["baseline"]["id"] == incident["current"].pk
    assert current["leads"] == proposed["leads"] == total
    assert current["assigned"] == proposed["assigned"] == total

    # region matching collapses: the region round-robin keeps every lead in its region; the
    # candidate sends the campaign's leads across the country
    assert current["region_match_rate"] == 1.0
    assert proposed["region_match_rate"] == round((total - leaving) / total, 4)
    assert report.region_match_drop == pytest.approx(
        current["region_match_rate"] - proposed["region_match_rate"]
    )
    policy = services.policy_get()
    assert report.region_match_drop > float(policy.region_match_margin)
    assert report.worse is True
    region = next(f for f in report.findings if f["code"] == "region_match_down")
    assert region["severity"] == "block" and report.findings[0]["severity"] == "block"
    assert "区域匹配率" in region["text"]

    # province concentration: alice (east, tagged education) gets every 广东 education lead
    limit = float(policy.province_share_limit)
    alice = next(r for r in proposed["reps"] if r["user_id"] == org.alice.pk)
    alice_guangdong = proposed["province_shares"][str(org.alice.pk)]["44"]
    assert round(alice_guangdong * alice["leads"]) == guangdong_education
    assert alice_guangdong == round(guangdong_education / alice["leads"], 4) > limit
    assert alice["flagged"] and alice["top_province"] == "44" and alice["top_province_name"] == "广东"
    assert "44" not in current["province_shares"].get(str(org.alice.pk), {})  # she had none before
    finding = next(
        f
        for f in report.findings
        if f["code"] == "province_concentration" and f["user_id"] == org.alice.pk and f["province"] == "44"
    )
    assert finding["severity"] == "block" and finding["candidate"] == alice_guangdong
    assert finding["current"] == 0.0 and "广东" in finding["text"]

    # …and sam (south, tagged medical) gets the north-east's medical leads: most from 辽宁
    sam = incident["sam"]
    sam_side = next(r for r in proposed["reps"] if r["user_id"] == sam.pk)
    sam_shares = proposed["province_shares"][str(sam.pk)]
    assert sam_shares["21"] == round(liaoning_medical / sam_side["leads"], 4) > limit
    northeast_share = sum(sam_shares.get(code, 0.0) for code in ("21", "22", "23"))
    assert northeast_share == pytest.approx(len(northeast_medical) / sam_side["leads"], abs=1e-3)
    assert northeast_share > 0.5
    assert any(
        f["code"] == "province_concentration" and f["user_id"] == sam.pk and f["province"] == "21"
        for f in report.findings
    )

    # the campaign's shared numbers: the region round-robin split people between reps; the
    # candidate hands each person's leads to the one tagged rep
    assert current["duplicate_rate"] > 0 and proposed["duplicate_rate"] == 0.0

    # the version cannot go live without a written override
    with pytest.raises(ValidationError) as refused:
        services.ruleset_publish(actor=org.director, ruleset=candidate)
    assert "override_reason" in refused.value.error_dict
    candidate.refresh_from_db()
    assert candidate.status == RuleSetStatus.DRAFT


def test_with_an_override_the_committee_is_told_what_got_worse(org, incident):
    # given: a simulated candidate the sandbox found worse, and a committee
    services.policy_update(actor=org.admin, committee=[org.carol, org.dave])
    report = simulate_start(actor=org.director, ruleset=incident["candidate"])
    assert report.worse
    # when: the director publishes it anyway, saying why
    published = services.ruleset_publish(
        actor=org.director, ruleset=incident["candidate"], override_reason="双十一活动期间临时按行业分配"
    )
    # then: it goes live after the notice period, and each committee member reads the findings
    assert published.status == RuleSetStatus.PUBLISHED and published.report_id == report.pk
    region_text = next(f["text"] for f in report.findings if f["code"] == "region_match_down")
    notices = Notification.objects.filter(kind="routing.publish")
    assert {n.user_id for n in notices} == {org.carol.pk, org.dave.pk}
    assert all(region_text in n.body and "双十一" in n.body for n in notices)
