"""The fairness report of the routing sandbox (C8.4): how a set of leads was spread over the reps,
measured the same way for the current rules and for a candidate, and what got worse, in plain words.

Pure functions, no database: the sandbox (routing.sandbox) feeds them a replay of past leads or the
assignments of a live A/B test. One side's numbers (`Side`, the agreed shape of
`RoutingReport.metrics["current"|"candidate"]`) are defined as follows.

- **leads / assigned / unassigned**: leads seen; leads the side gave to a rep; leads left in the pool.
- **region match rate**: of the assigned leads, the share whose customer's province belongs to the
  region of the rep who got it. A lead without a province (or a rep without a region) never matches.
- **industry match rate**: of the assigned leads, the share whose customer industry is one of the
  rep's specialty tags (RepProfile.specialties). A lead without an industry never matches.
- **reps**: every rep of the population (below) and anyone else who got a lead, with their leads,
  their share of the side's assigned leads, and the province most of their leads come from.
- **province_shares**: for each rep who got leads, the share of *that rep's* leads from each
  province (leads without a province count in the denominator only).
- **flags**: a rep is flagged for a province when more than the policy's `province_share_limit` of
  the rep's leads come from it — the source's incident: one rep with 73% of their numbers from 广东.
  Reps with fewer than FLAG_MIN_LEADS leads are never flagged: two leads of three from one province
  is chance, not a pattern. Flags are reported on both sides; a flag the candidate raises and the
  current rules do not is a `province_concentration` finding of severity `block`.
- **gini**: Gini coefficient of leads per rep over the population — every active rep in a pool of
  either rule set (a pool that takes the lead's region counts every rep with a region), plus anyone
  who got a lead. Both sides are measured over the same population, so a candidate that narrows the
  pools to a few reps shows up as imbalance instead of hiding it. 0 = everyone got as many leads.
- **conversion_deviation**: the lead-weighted mean absolute difference between the historical
  conversion rate of the rep each lead goes to and the team's mean rate. A rep's historical rate is
  their won leads ÷ closed (won + lost) leads closed before the window; the team mean is the plain
  mean of those rates over the population's reps that have any closed lead. Leads going to reps
  without a closed lead are left out (no rate to compare). 0 = leads go to reps who convert like
  the team; higher = leads flow to unusually strong or unusually weak closers.
- **duplicate_rate**: the share of the side's leads whose contact phone already came in on an
  earlier lead of the window and that went to a *different* rep than the first assigned lead of
  that phone — one person's ownership split between reps. Leads without a phone never count;
  leads left in the pool never count.

`compare` lists what got worse from current to candidate (each finding carries a plain Chinese
`text`; `finding_sentence` renders it in the reader's language); `region_match_drop` and `worse`
are the publication gate (services.ruleset_publish needs an override when `worse`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils import translation
from django.utils.translation import gettext as _

from salesloop.routing.engine import Roster

FLAG_MIN_LEADS = 5
# Differences smaller than these are noise, not findings (the region gate has its own margin).
RATE_NOISE = 0.01
GINI_NOISE = 0.02
DIGITS = 4

Side = dict[str, Any]
Finding = dict[str, Any]


@dataclass(frozen=True, slots=True)
class LeadSample:
    """What the fairness report reads of a lead: its province, the region of that province, the
    customer's industry and the contact's phone."""

    province: str | None
    region: str | None
    industry: str
    phone: str


def gini(values: Iterable[float]) -> float:
    """Gini coefficient of non-negative amounts: 0 when all are equal, towards 1 when one holds
    everything. Empty or all-zero: 0."""
    ordered = sorted(values)
    n, total = len(ordered), sum(ordered)
    if n == 0 or total <= 0:
        return 0.0
    weighted = sum(i * x for i, x in enumerate(ordered, start=1))
    return max(0.0, (2 * weighted) / (n * total) - (n + 1) / n)


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


class SideTally:
    """One side's counts, added lead by lead (a replay of 100k leads keeps no per-lead list)."""

    def __init__(self, roster: Roster) -> None:
        self.roster = roster
        self.leads = 0
        self.assigned = 0
        self.region_matches = 0
        self.industry_matches = 0
        self.duplicates = 0
        self.per_rep: Counter[int] = Counter()
        self.per_rep_province: Counter[tuple[int, str]] = Counter()
        self._first_rep_of_phone: dict[str, int] = {}

    def add(
        self, province: str | None, region: str | None, industry: str, phone: str, rep_id: int | None
    ) -> None:
        self.leads += 1
        if rep_id is None:
            return
        self.assigned += 1
        self.per_rep[rep_id] += 1
        if province:
            self.per_rep_province[(rep_id, province)] += 1
        rep = self.roster.reps.get(rep_id)
        if rep is not None:
            if region is not None and rep.region == region:
                self.region_matches += 1
            if industry and industry in rep.specialties:
                self.industry_matches += 1
        if phone:
            first = self._first_rep_of_phone.setdefault(phone, rep_id)
            if first != rep_id:
                self.duplicates += 1

    def add_sample(self, sample: LeadSample, rep_id: int | None) -> None:
        self.add(sample.province, sample.region, sample.industry, sample.phone, rep_id)

    def side(
        self,
        *,
        population: Iterable[int],
        conversion_rates: Mapping[int, float],
        province_names: Mapping[str, str],
        share_limit: float,
    ) -> Side:
        """The agreed `Side` document (see the module docstring for each number)."""
        people = sorted(set(population) | set(self.per_rep))
        by_rep: dict[int, dict[str, int]] = {}
        for (rep_id, province), n in self.per_rep_province.items():
            by_rep.setdefault(rep_id, {})[province] = n
        province_shares: dict[str, dict[str, float]] = {}
        flags: list[dict[str, Any]] = []
        reps: list[dict[str, Any]] = []
        for rep_id in people:
            rep = self.roster.reps.get(rep_id)
            name = rep.name if rep is not None else f"#{rep_id}"
            received = self.per_rep.get(rep_id, 0)
            counts = by_rep.get(rep_id, {})
            shares = {code: round(n / received, DIGITS) for code, n in sorted(counts.items())}
            if received:
                province_shares[str(rep_id)] = shares
            top = max(sorted(counts), key=lambda code: counts[code]) if counts else None
            flagged = False
            if received >= FLAG_MIN_LEADS:
                for code in sorted(counts):
                    if counts[code] / received > share_limit:
                        flagged = True
                        flags.append(
                            {
                                "user_id": rep_id,
                                "name": name,
                                "province": code,
                                "province_name": province_names.get(code, code),
                                "share": shares[code],
                            }
                        )
            reps.append(
                {
                    "user_id": rep_id,
                    "name": name,
                    "region": rep.region if rep is not None else None,
                    "leads": received,
                    "share": round(_ratio(received, self.assigned), DIGITS),
                    "top_province": top,
                    "top_province_name": province_names.get(top, top) if top else None,
                    "top_province_share": shares[top] if top else 0.0,
                    "flagged": flagged,
                }
            )
        reps.sort(key=lambda r: (-r["leads"], r["user_id"]))
        flags.sort(key=lambda f: (-f["share"], f["user_id"], f["province"]))
        return {
            "leads": self.leads,
            "assigned": self.assigned,
            "unassigned": self.leads - self.assigned,
            "region_match_rate": round(_ratio(self.region_matches, self.assigned), DIGITS),
            "industry_match_rate": round(_ratio(self.industry_matches, self.assigned), DIGITS),
            "gini": round(gini([self.per_rep.get(u, 0) for u in people]), DIGITS),
            "conversion_deviation": round(self._conversion_deviation(people, conversion_rates), DIGITS),
            "duplicate_rate": round(_ratio(self.duplicates, self.leads), DIGITS),
            "reps": reps,
            "province_shares": province_shares,
            "flags": flags,
        }

    def _conversion_deviation(self, people: list[int], rates: Mapping[int, float]) -> float:
        known = [rates[u] for u in people if u in rates]
        if not known:
            return 0.0
        mean = sum(known) / len(known)
        weighted = counted = 0
        for rep_id, n in self.per_rep.items():
            if rep_id in rates:
                weighted += n * abs(rates[rep_id] - mean)
                counted += n
        return _ratio(weighted, counted)


def side_compute(
    routed: Iterable[tuple[LeadSample, int | None]],
    roster: Roster,
    *,
    population: Iterable[int],
    conversion_rates: Mapping[int, float],
    province_names: Mapping[str, str],
    share_limit: float,
) -> Side:
    """C8.4: one side's fairness numbers from (lead, rep chosen or None) pairs, in arrival order."""
    tally = SideTally(roster)
    for sample, rep_id in routed:
        tally.add_sample(sample, rep_id)
    return tally.side(
        population=population,
        conversion_rates=conversion_rates,
        province_names=province_names,
        share_limit=share_limit,
    )


def pool_population(definitions: Iterable[Any], roster: Roster) -> set[int]:
    """Every active rep any rule (fallback included) of the definitions may hand a lead to."""
    people: set[int] = set()
    regional = [u for ids in roster.by_region.values() for u in ids]
    for definition in definitions:
        for routing in [*definition.rules, definition.fallback]:
            pool = routing.pool
            for team in pool.teams:
                people.update(roster.by_team.get(team, ()))
            for region in pool.regions:
                people.update(roster.by_region.get(region, ()))
            for username in pool.users:
                if username in roster.by_username:
                    people.add(roster.by_username[username])
            if pool.lead_region:
                people.update(regional)
    return {u for u in people if roster.reps[u].active}


# ---- comparing the sides ------------------------------------------------------------------------


def region_match_drop(current: Side, candidate: Side) -> float:
    """How much lower the candidate's region match rate is (positive: worse)."""
    return round(current["region_match_rate"] - candidate["region_match_rate"], DIGITS)


def worse(current: Side, candidate: Side, policy: Any) -> bool:
    """C8.4: the candidate loses more region matching than the policy's margin allows; publishing
    it then needs a written override (services.ruleset_publish)."""
    return region_match_drop(current, candidate) > float(policy.region_match_margin)


def _finding(
    code: str, severity: str, current: float | None, candidate: float | None, **extra: Any
) -> Finding:
    finding: Finding = {
        "code": code,
        "severity": severity,
        "current": current,
        "candidate": candidate,
        **extra,
    }
    with translation.override("zh-hans"):
        finding["text"] = finding_sentence(finding)
    return finding


def compare(current: Side, candidate: Side, policy: Any) -> list[Finding]:
    """C8.4: what the candidate makes worse than the current rules, blocking findings first. Each
    finding carries the two values, its parameters and a plain Chinese `text` (the committee's
    notification quotes it)."""
    findings: list[Finding] = []
    margin = float(policy.region_match_margin)
    limit = float(policy.province_share_limit)
    drop = region_match_drop(current, candidate)
    if drop > margin or drop > RATE_NOISE:
        findings.append(
            _finding(
                "region_match_down",
                "block" if drop > margin else "warn",
                current["region_match_rate"],
                candidate["region_match_rate"],
                drop=drop,
                margin=margin,
            )
        )
    current_flags = {(f["user_id"], f["province"]): f for f in current["flags"]}
    current_shares = current["province_shares"]
    for flag in candidate["flags"]:
        if (flag["user_id"], flag["province"]) in current_flags:
            continue
        before = current_shares.get(str(flag["user_id"]), {}).get(flag["province"], 0.0)
        findings.append(
            _finding(
                "province_concentration",
                "block",
                before,
                flag["share"],
                user_id=flag["user_id"],
                name=flag["name"],
                province=flag["province"],
                province_name=flag["province_name"],
                limit=limit,
            )
        )
    if current["industry_match_rate"] - candidate["industry_match_rate"] > RATE_NOISE:
        findings.append(
            _finding(
                "industry_match_down",
                "warn",
                current["industry_match_rate"],
                candidate["industry_match_rate"],
            )
        )
    if candidate["gini"] - current["gini"] > GINI_NOISE:
        findings.append(_finding("gini_up", "warn", current["gini"], candidate["gini"]))
    if candidate["conversion_deviation"] - current["conversion_deviation"] > RATE_NOISE:
        findings.append(
            _finding(
                "conversion_deviation_up",
                "warn",
                current["conversion_deviation"],
                candidate["conversion_deviation"],
            )
        )
    if candidate["duplicate_rate"] - current["duplicate_rate"] > RATE_NOISE:
        findings.append(
            _finding("duplicate_rate_up", "warn", current["duplicate_rate"], candidate["duplicate_rate"])
        )
    before_pool = round(_ratio(current["unassigned"], current["leads"]), DIGITS)
    after_pool = round(_ratio(candidate["unassigned"], candidate["leads"]), DIGITS)
    if after_pool - before_pool > RATE_NOISE:
        findings.append(
            _finding(
                "unassigned_up",
                "warn",
                before_pool,
                after_pool,
                current_count=current["unassigned"],
                candidate_count=candidate["unassigned"],
            )
        )
    findings.sort(key=lambda f: f["severity"] != "block")  # stable: blocks first, order kept
    return findings


def _pct(value: float | None) -> str:
    return f"{(value or 0) * 100:.1f}%"


def _points(value: float | None) -> str:
    return f"{(value or 0) * 100:.1f}"


def finding_sentence(finding: Finding) -> str:
    """A finding in plain words, in the active language (the stored `text` is the Chinese one)."""
    code = finding.get("code")
    current, candidate = finding.get("current"), finding.get("candidate")
    if code == "region_match_down":
        return _(
            "Region matching falls from %(current)s to %(candidate)s: %(drop)s points fewer leads go to "
            "a rep of the region their customer is in (the policy allows %(margin)s points)."
        ) % {
            "current": _pct(current),
            "candidate": _pct(candidate),
            "drop": _points(finding.get("drop")),
            "margin": _points(finding.get("margin")),
        }
    if code == "province_concentration":
        return _(
            "%(name)s would get %(share)s of their leads from %(province)s (now %(current)s), above the "
            "limit of %(limit)s for one province."
        ) % {
            "name": finding.get("name", ""),
            "share": _pct(candidate),
            "province": finding.get("province_name") or finding.get("province", ""),
            "current": _pct(current),
            "limit": _pct(finding.get("limit")),
        }
    if code == "industry_match_down":
        return _(
            "Industry matching falls from %(current)s to %(candidate)s: fewer leads go to a rep tagged "
            "with the customer's industry."
        ) % {"current": _pct(current), "candidate": _pct(candidate)}
    if code == "gini_up":
        return _(
            "Leads are spread less evenly between reps: the Gini coefficient rises from %(current)s to "
            "%(candidate)s (0 means everyone gets as many)."
        ) % {"current": f"{current or 0:.2f}", "candidate": f"{candidate or 0:.2f}"}
    if code == "conversion_deviation_up":
        return _(
            "Leads flow more to reps whose past conversion rate is far from the team's: the deviation "
            "rises from %(current)s to %(candidate)s points."
        ) % {"current": _points(current), "candidate": _points(candidate)}
    if code == "duplicate_rate_up":
        return _(
            "More leads of one person go to a different rep than that person's first lead: from "
            "%(current)s to %(candidate)s of leads."
        ) % {"current": _pct(current), "candidate": _pct(candidate)}
    if code == "unassigned_up":
        return _(
            "More leads find nobody eligible and wait in the pool: from %(current)s to %(candidate)s."
        ) % {"current": _pct(current), "candidate": _pct(candidate)}
    return str(finding.get("text") or code)
