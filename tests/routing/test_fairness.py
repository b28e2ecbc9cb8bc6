"""C8.4: the fairness numbers of the sandbox's report, on small cases worked out by hand."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import translation

from salesloop.routing.engine import Rep, Roster
from salesloop.routing.fairness import (
    FLAG_MIN_LEADS,
    LeadSample,
    compare,
    finding_sentence,
    gini,
    pool_population,
    region_match_drop,
    side_compute,
    worse,
)
from salesloop.routing.ruleset import parse

POLICY = SimpleNamespace(region_match_margin=Decimal("0.050"), province_share_limit=Decimal("0.400"))
PROVINCES = {"31": "上海", "32": "江苏", "44": "广东", "45": "广西"}
REGION = {"31": "east", "32": "east", "44": "south", "45": "south"}


def rep(user_id: int, region: str | None, *, specialties: tuple[str, ...] = (), active: bool = True) -> Rep:
    return Rep(
        id=user_id,
        username=f"u{user_id}",
        name=f"销售{user_id}",
        region=region,
        team=None,
        active=active,
        is_rep=True,
        specialties=frozenset(specialties),
    )


def roster(*reps: Rep) -> Roster:
    return Roster(reps={r.id: r for r in reps})


def lead(province: str | None, *, industry: str = "", phone: str = "") -> LeadSample:
    return LeadSample(province=province, region=REGION.get(province or ""), industry=industry, phone=phone)


def side(routed, team: Roster, *, population=None, rates=None, limit: float = 0.4):
    return side_compute(
        routed,
        team,
        population=population if population is not None else list(team.reps),
        conversion_rates=rates or {},
        province_names=PROVINCES,
        share_limit=limit,
    )


class TestGini:
    @pytest.mark.parametrize(
        "values, expected",
        [([1, 1], 0.0), ([5, 5, 5], 0.0), ([0, 1], 0.5), ([0, 0, 0, 3], 0.75), ([], 0.0), ([0, 0], 0.0)],
    )
    def test_gini_of_leads_per_rep(self, values, expected):
        assert gini(values) == pytest.approx(expected)

    def test_gini_equals_the_mean_absolute_difference_definition(self):
        values = [3, 1, 4, 1, 5, 9, 2, 6]
        n, mean = len(values), sum(values) / len(values)
        by_pairs = sum(abs(a - b) for a in values for b in values) / (2 * n * n * mean)
        assert gini(values) == pytest.approx(by_pairs)


class TestSide:
    def test_region_match_is_counted_over_assigned_leads(self):
        # given: an east rep and a south rep; three east leads and one south lead go to the east rep,
        # one lead finds nobody
        team = roster(rep(1, "east"), rep(2, "south"))
        routed = [(lead("31"), 1), (lead("32"), 1), (lead("31"), 1), (lead("44"), 1), (lead("44"), None)]
        # when
        result = side(routed, team)
        # then: 3 of the 4 assigned leads are in the rep's region; the pooled lead does not count
        assert (result["leads"], result["assigned"], result["unassigned"]) == (5, 4, 1)
        assert result["region_match_rate"] == 0.75

    def test_a_lead_without_a_province_or_a_rep_without_a_region_never_matches(self):
        team = roster(rep(1, None), rep(2, "east"))
        result = side([(lead(None), 2), (lead("31"), 1), (lead("31"), 2)], team)
        assert result["region_match_rate"] == pytest.approx(1 / 3, abs=1e-4)

    def test_industry_match_reads_the_reps_specialty_tags(self):
        team = roster(rep(1, "east", specialties=("制造业",)), rep(2, "east"))
        routed = [
            (lead("31", industry="制造业"), 1),  # tagged: match
            (lead("31", industry="制造业"), 2),  # blank tags: no match
            (lead("31", industry="教育"), 1),  # other industry: no match
            (lead("31", industry=""), 1),  # no industry: no match
        ]
        assert side(routed, team)["industry_match_rate"] == 0.25

    def test_each_reps_share_of_leads_and_of_each_province(self):
        team = roster(rep(1, "south"), rep(2, "east"), rep(3, "east"))
        routed = [(lead("44"), 1)] * 3 + [(lead("45"), 1)] + [(lead("31"), 2)] * 2 + [(lead(None), 2)] * 2
        result = side(routed, team)
        reps = {r["user_id"]: r for r in result["reps"]}
        assert reps[1]["leads"] == 4 and reps[1]["share"] == 0.5
        assert reps[1]["top_province"] == "44" and reps[1]["top_province_name"] == "广东"
        assert reps[1]["top_province_share"] == 0.75
        # a lead without a province counts in the rep's total, not as a province
        assert result["province_shares"]["2"] == {"31": 0.5}
        # the rep nobody gave a lead is listed with nothing, and has no province shares
        assert (
            reps[3]["leads"] == 0 and reps[3]["top_province"] is None and "3" not in result["province_shares"]
        )
        assert [r["user_id"] for r in result["reps"]] == [1, 2, 3]

    def test_a_rep_is_flagged_above_the_share_limit_of_one_province(self):
        team = roster(rep(1, "south"), rep(2, "south"))
        # rep 1: 5 of 6 leads from 广东; rep 2: all of too few leads from 广东
        few = FLAG_MIN_LEADS - 1
        routed = [(lead("44"), 1)] * 5 + [(lead("45"), 1)] + [(lead("44"), 2)] * few
        result = side(routed, team)
        assert result["flags"] == [
            {"user_id": 1, "name": "销售1", "province": "44", "province_name": "广东", "share": 0.8333}
        ]
        flagged = {r["user_id"]: r["flagged"] for r in result["reps"]}
        assert flagged == {1: True, 2: False}
        # at a limit above the share, nobody is flagged
        assert side(routed, team, limit=0.9)["flags"] == []

    def test_gini_is_measured_over_the_whole_population(self):
        team = roster(rep(1, "east"), rep(2, "east"), rep(3, "east"), rep(4, "east"))
        routed = [(lead("31"), 1), (lead("31"), 2)]
        assert side(routed, team, population=[1, 2])["gini"] == 0.0
        # two of four reps got everything: the same as gini([0, 0, 1, 1])
        assert side(routed, team, population=[1, 2, 3, 4])["gini"] == pytest.approx(gini([0, 0, 1, 1]))

    def test_conversion_deviation_weighs_each_leads_rep_against_the_team_mean(self):
        team = roster(rep(1, "east"), rep(2, "east"), rep(3, "east"), rep(4, "east"))
        rates = {1: 0.6, 2: 0.2, 3: 0.1}  # rep 4 has never closed a lead
        mean = (0.6 + 0.2 + 0.1) / 3
        routed = [(lead("31"), 1), (lead("31"), 1), (lead("31"), 2), (lead("31"), 4)]
        expected = (2 * abs(0.6 - mean) + abs(0.2 - mean)) / 3  # rep 4's lead has no rate to compare
        assert side(routed, team, rates=rates)["conversion_deviation"] == pytest.approx(expected, abs=1e-4)
        assert side(routed, team, rates={})["conversion_deviation"] == 0.0

    def test_duplicate_rate_counts_one_persons_leads_split_between_reps(self):
        team = roster(rep(1, "east"), rep(2, "east"))
        routed = [
            (lead("31", phone="+8613800000001"), 1),
            (lead("31", phone="+8613800000001"), 1),  # same rep again: not split
            (lead("31", phone="+8613800000001"), 2),  # split
            (lead("31", phone="+8613800000001"), None),  # in the pool: not counted
            (lead("31", phone="+8613800000002"), None),
            (lead("31", phone="+8613800000002"), 2),  # first assigned lead of this phone
            (lead("31", phone="+8613800000002"), 1),  # split
            (lead("31", phone=""), 1),
            (lead("31", phone=""), 2),  # no phone: never a duplicate
        ]
        assert side(routed, team)["duplicate_rate"] == pytest.approx(2 / 9, abs=1e-4)


def _sides(current_routed, candidate_routed, team):
    return side(current_routed, team), side(candidate_routed, team)


class TestCompare:
    def test_a_region_match_drop_beyond_the_margin_blocks_and_is_worse(self):
        team = roster(rep(1, "east"), rep(2, "south"))
        leads = [lead("31"), lead("31"), lead("44"), lead("44")]
        current, candidate = _sides(
            list(zip(leads, [1, 1, 2, 2], strict=True)), list(zip(leads, [1, 1, 1, 1], strict=True)), team
        )
        drop = current["region_match_rate"] - candidate["region_match_rate"]
        assert region_match_drop(current, candidate) == drop == 0.5
        assert worse(current, candidate, POLICY)
        findings = compare(current, candidate, POLICY)
        region = next(f for f in findings if f["code"] == "region_match_down")
        assert region["severity"] == "block"
        assert (region["current"], region["candidate"], region["drop"]) == (1.0, 0.5, 0.5)
        assert findings[0]["severity"] == "block"
        assert "区域匹配率" in region["text"] and "50.0%" in region["text"]

    def test_a_small_drop_within_the_margin_is_a_warning_and_not_worse(self):
        team = roster(rep(1, "east"), rep(2, "south"))
        leads = [lead("31")] * 49 + [lead("44")]
        current = side([(x, 1) for x in leads[:-1]] + [(leads[-1], 2)], team)
        candidate = side([(x, 1) for x in leads], team)
        assert region_match_drop(current, candidate) == pytest.approx(0.02)
        assert not worse(current, candidate, POLICY)
        region = next(f for f in compare(current, candidate, POLICY) if f["code"] == "region_match_down")
        assert region["severity"] == "warn"

    def test_identical_sides_have_no_findings(self):
        team = roster(rep(1, "east"), rep(2, "south"))
        routed = [(lead("31"), 1), (lead("44"), 2), (lead("44"), None)]
        current, candidate = _sides(routed, routed, team)
        assert compare(current, candidate, POLICY) == []
        assert not worse(current, candidate, POLICY)

    def test_only_a_concentration_the_candidate_brings_is_a_finding(self):
        team = roster(rep(1, "south"), rep(2, "south"), rep(3, "east"))
        # current: rep 1 is already 100% 广东 (flagged on both sides: no finding for rep 1);
        # candidate: rep 3 gets 6 广东 leads of 8
        current_routed = [(lead("44"), 1)] * 6 + [(lead("31"), 3)] * 8
        candidate_routed = [(lead("44"), 1)] * 6 + [(lead("44"), 3)] * 6 + [(lead("31"), 3)] * 2
        current, candidate = _sides(current_routed, candidate_routed, team)
        assert {(f["user_id"], f["province"]) for f in current["flags"]} == {(1, "44"), (3, "31")}
        concentration = [
            f for f in compare(current, candidate, POLICY) if f["code"] == "province_concentration"
        ]
        assert len(concentration) == 1
        finding = concentration[0]
        assert (finding["user_id"], finding["province"], finding["severity"]) == (3, "44", "block")
        assert finding["candidate"] == 0.75 and finding["current"] == 0.0 and finding["limit"] == 0.4
        assert "广东" in finding["text"] and "75.0%" in finding["text"]

    def test_other_metrics_that_get_worse_are_warnings(self):
        team = roster(rep(1, "east", specialties=("制造业",)), rep(2, "east"))
        phone = "+8613800000009"
        current_routed = [
            (lead("31", industry="制造业", phone=phone), 1),
            (lead("31", industry="制造业", phone=phone), 1),
            (lead("32", industry="制造业"), 2),
            (lead("32", industry="制造业"), 2),
        ]
        candidate_routed = [
            (current_routed[0][0], 1),
            (current_routed[1][0], 2),  # one person's leads split
            (current_routed[2][0], 2),
            (current_routed[3][0], None),  # left in the pool
        ]
        current, candidate = _sides(current_routed, candidate_routed, team)
        codes = {f["code"]: f for f in compare(current, candidate, POLICY)}
        assert set(codes) == {"industry_match_down", "gini_up", "duplicate_rate_up", "unassigned_up"}
        assert all(f["severity"] == "warn" for f in codes.values())
        assert codes["unassigned_up"]["candidate"] == 0.25 and codes["unassigned_up"]["candidate_count"] == 1
        assert codes["gini_up"]["candidate"] > codes["gini_up"]["current"]

    def test_a_finding_is_rendered_in_the_readers_language(self):
        team = roster(rep(1, "east"), rep(2, "south"))
        leads = [lead("31"), lead("44")]
        current, candidate = _sides(
            list(zip(leads, [1, 2], strict=True)), list(zip(leads, [1, 1], strict=True)), team
        )
        finding = next(f for f in compare(current, candidate, POLICY) if f["code"] == "region_match_down")
        with translation.override("en"):
            english = finding_sentence(finding)
        with translation.override("zh-hans"):
            chinese = finding_sentence(finding)
        assert "Region matching falls from 100.0% to 50.0%" in english
        assert chinese == finding["text"] and chinese != english


class TestPopulation:
    def test_the_population_is_every_active_rep_any_pool_names(self):
        team = roster(
            rep(1, "east"), rep(2, "east", active=False), rep(3, "south"), rep(4, "north"), rep(5, None)
        )
        doc = {
            "name": "t",
            "rules": [
                {
                    "id": "a",
                    "name": "a",
                    "priority": 1,
                    "pool": {"regions": ["east"]},
                    "strategy": "round_robin",
                }
            ],
            "fallback": {"pool": {"users": ["u5"]}, "strategy": "round_robin"},
        }
        assert pool_population([parse(doc)], team) == {1, 5}
        regional = {**doc, "fallback": {"pool": {"lead_region": True}, "strategy": "round_robin"}}
        assert pool_population([parse(regional)], team) == {1, 3, 4}
