"""Demo rows: customers, contacts, leads and stage moves as tuples ready for a bulk insert.

`LeadRowsPlan` looks up once what every chunk needs (stages, provinces with their mobile prefixes,
owners, the arrival curve); `chunk_generate` turns a random stream and the first ids of a chunk
into rows. Nothing here touches the database except `identities_make_unique`, the rare fallback
when a generated phone or WeCom id is already taken.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from salesloop.accounts.geography import DEMO_REGIONS
from salesloop.accounts.models import Province
from salesloop.core import explanations
from salesloop.crm.models import CompanySize, Contact, Customer, Lead, company_key
from salesloop.demo import names
from salesloop.demo.history import (
    ACTOR_MANAGER,
    ACTOR_OWNER,
    DAY,
    HOUR,
    LOST,
    OPEN,
    SHANGHAI_OFFSET,
    Move,
    stage_entered_at,
    stage_history,
)
from salesloop.demo.org import DemoOrg
from salesloop.demo.phonebook import prefixes_by_province
from salesloop.pipeline.models import StageMove
from salesloop.pipeline.selectors import pipeline_default, pipeline_stages

HISTORY_DAYS = 182  # "the last six months"
POOLED_SHARE = 0.03  # leads still waiting in their region's pool, without an owner

CHANNELS = ["douyin", "wecom", "web_form", "call_400", "card", "referral"]
CHANNEL_CUM_WEIGHTS = list(accumulate([35, 20, 18, 10, 9, 8]))
SIZES = [CompanySize.S.value, CompanySize.M.value, CompanySize.L.value, CompanySize.XL.value]
SIZE_CUM_WEIGHTS = list(accumulate([30, 35, 25, 10]))
# Median deal size in yuan by company size; amounts spread log-normally around it.
SIZE_MEDIAN_AMOUNT = {"1-49": 80_000, "50-199": 200_000, "200-999": 500_000, "1000+": 1_100_000}
MIN_AMOUNT, MAX_AMOUNT = 50_000, 2_000_000

CUSTOMER_COLUMNS = [
    "id", "created_at", "updated_at", "name", "name_key", "industry", "size", "province_id", "city",
]  # fmt: skip
CONTACT_COLUMNS = [
    "id", "created_at", "updated_at", "customer_id", "name", "title", "phone", "wecom_external_id", "email",
]  # fmt: skip
LEAD_COLUMNS = [
    "id", "created_at", "updated_at", "title", "customer_id", "contact_id", "source", "campaign",
    "owner_id", "region_id", "pipeline_id", "stage_id", "status", "lost_reason", "expected_amount",
    "stage_entered_at", "assigned_at", "closed_at",
]  # fmt: skip
MOVE_COLUMNS = [
    "id", "lead_id", "from_stage_id", "to_stage_id", "from_status", "to_status", "actor_id", "at",
    "note", "reason", "filled", "explanation",
]  # fmt: skip
_PHONE_COLUMN = CONTACT_COLUMNS.index("phone")
_WECOM_COLUMN = CONTACT_COLUMNS.index("wecom_external_id")

_WECOM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
_DWELL_SENTINEL = 987_654_321_987  # stands for dwell_seconds in an explanation template
_SUFFIXES = 10_000  # numbers per 7-digit prefix


@dataclass
class ProvinceNumbers:
    """One province's mobile numbers, and a bijection from lead ids onto them.

    `number(lead_id)` = prefix and suffix of `(lead_id × multiplier + offset) mod size`: distinct
    leads of a province get distinct numbers (for ids below `size`, ≥ 33 million even for 海南), so
    generated contacts never collide with each other — the unique phone constraint is met by
    construction instead of by a database look-up per number.
    """

    code: str
    region_id: int | None
    prefixes: list[int]
    city_index: list[int]
    cities: list[str]
    multiplier: int = 1
    offset: int = 0

    @property
    def size(self) -> int:
        return len(self.prefixes) * _SUFFIXES

    def number(self, lead_id: int) -> tuple[str, str]:
        """(E.164 phone, city of its prefix)."""
        slot, suffix = divmod((lead_id * self.multiplier + self.offset) % self.size, _SUFFIXES)
        return f"+86{self.prefixes[slot]}{suffix:04d}", self.cities[self.city_index[slot]]


def _coprime_multiplier(size: int) -> int:
    """A large multiplier that shares no factor with `size`, so the map is a bijection; large, so
    consecutive ids land far apart (different cities, not a run of neighbouring numbers)."""
    multiplier = 2_654_435_761 % size  # Knuth's multiplicative-hash constant
    while math.gcd(multiplier, size) != 1:
        multiplier += 1
    return multiplier


class LeadRowsPlan:
    """Everything a chunk needs that does not change between chunks, looked up once."""

    def __init__(self, *, org: DemoOrg, now: dt.datetime, seed: int, rework: float = 0.0) -> None:
        self.now = int(now.timestamp())
        self.rework = rework  # demo.history.stage_history: busier histories for benchmarks
        self.start = self.now - HISTORY_DAYS * DAY
        pipeline = pipeline_default()
        self.pipeline_id = pipeline.pk
        stages = pipeline_stages(pipeline.pk)
        self.stage_ids = [stage.pk for stage in stages]
        self.stage_codes = [stage.code for stage in stages]

        book = prefixes_by_province()
        demo_codes = [code for _, _, codes in DEMO_REGIONS for code in codes]
        rows = Province.objects.filter(code__in=demo_codes).values_list("code", "name", "region_id")
        known = {code: (name, region_id) for code, name, region_id in rows}
        self.provinces: list[ProvinceNumbers] = []
        for code in demo_codes:
            name, region_id = known.get(code, ("", None))
            entry = book.get(name)
            if entry is None or not entry.prefixes:
                continue
            province = ProvinceNumbers(code, region_id, entry.prefixes, entry.city_index, entry.cities)
            province.multiplier = _coprime_multiplier(province.size)
            province.offset = random.Random(f"salesloop-demo:{seed}:phones:{code}").randrange(province.size)
            self.provinces.append(province)
        # More mobile prefixes, more people: the prefix count is a fair proxy for where leads come from.
        self.province_cum_weights = list(accumulate(len(p.prefixes) for p in self.provinces))

        self.owners_by_region_id: dict[int, list[int]] = {}
        self.manager_by_region_id: dict[int, int] = {}
        for code, region in org.regions.items():
            self.owners_by_region_id[region.pk] = [user.pk for user in org.reps(code)]
            manager = org.manager(code)
            if manager is not None:
                self.manager_by_region_id[region.pk] = manager.pk

        self.arrival_cum_weights = self._arrival_weights()
        self._explanations: dict[tuple[Any, ...], tuple[str, str]] = {}

    def _arrival_weights(self) -> list[float]:
        """Cumulative weight per hour of the six months: leads arrive in working hours, on weekdays,
        and a little more often lately (the demo company is growing)."""
        hour_weight = [0.05] * 8 + [0.4, 1, 1, 1, 0.7, 0.7, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.2, 0.2, 0.2]
        weights = []
        hours = HISTORY_DAYS * 24
        for h in range(hours):
            local = self.start + h * HOUR + SHANGHAI_OFFSET
            weekday = (local // DAY + 3) % 7  # 1970-01-01 was a Thursday (3 with Monday = 0)
            day_weight = 1.0 if weekday < 5 else (0.35 if weekday == 5 else 0.25)
            trend = 0.7 + 0.6 * h / hours
            weights.append(hour_weight[(local % DAY) // HOUR] * day_weight * trend)
        return list(accumulate(weights))

    def arrival(self, fraction: float) -> int:
        """The moment at `fraction` (0..1) of all arrivals: monotonic, so ids follow creation time."""
        target = fraction * self.arrival_cum_weights[-1]
        hour = min(bisect.bisect_left(self.arrival_cum_weights, target), len(self.arrival_cum_weights) - 1)
        below = self.arrival_cum_weights[hour - 1] if hour else 0.0
        width = self.arrival_cum_weights[hour] - below
        within = (target - below) / width if width else 0.0
        return min(self.start + hour * HOUR + int(within * HOUR), self.now)

    def explanation(self, move: Move) -> str:
        """The stored JSON of a move's explanation. Built (and so validated) by
        `explanations.build` once per kind of move; only the dwell time differs between moves."""
        key = (move.from_index, move.to_index, move.from_status, move.to_status, move.reason)
        template = self._explanations.get(key)
        if template is None:
            if move.from_index is None:
                direction, skipped = "enter", []
            elif move.from_index == move.to_index:
                direction, skipped = "same", []
            elif move.to_index > move.from_index:
                direction = "forward"
                skipped = self.stage_codes[move.from_index + 1 : move.to_index]
            else:
                direction, skipped = "backward", []
            built = explanations.build(
                "stage_move",
                from_stage=self.stage_codes[move.from_index] if move.from_index is not None else None,
                to_stage=self.stage_codes[move.to_index],
                direction=direction,
                skipped_stages=skipped,
                dwell_seconds=None if move.dwell_seconds is None else _DWELL_SENTINEL,
                from_status=move.from_status,
                to_status=move.to_status,
                reason=move.reason,
            )
            head, _, tail = json.dumps(built).partition(str(_DWELL_SENTINEL))
            template = self._explanations[key] = (head, tail)
        head, tail = template
        return head if move.dwell_seconds is None else f"{head}{move.dwell_seconds}{tail}"


@dataclass
class Chunk:
    customers: list[tuple[Any, ...]] = field(default_factory=list)
    contacts: list[tuple[Any, ...]] = field(default_factory=list)
    leads: list[tuple[Any, ...]] = field(default_factory=list)
    moves: list[tuple[Any, ...]] = field(default_factory=list)
    contact_provinces: list[ProvinceNumbers] = field(default_factory=list)  # in step with `contacts`
    outcomes: dict[str, int] = field(default_factory=lambda: {"open": 0, "won": 0, "lost": 0})


def _pick(rng: random.Random, items: list[Any] | str) -> Any:
    return items[int(rng.random() * len(items))]


def _wecom_external_id(rng: random.Random) -> str:
    return "wm" + "".join(_pick(rng, _WECOM_ALPHABET) for _ in range(30))


def chunk_generate(
    plan: LeadRowsPlan,
    rng: random.Random,
    *,
    ids: dict[type[Any], int],
    first_index: int,
    count: int,
    batch_total: int,
    ts: Callable[[int], str],
) -> Chunk:
    """Leads `first_index … first_index + count - 1` of this run (of `batch_total`), with their
    customers, contacts and moves, as row tuples in the column order of the *_COLUMNS lists."""
    chunk = Chunk()
    customer_id, contact_id, lead_id, move_id = ids[Customer], ids[Contact], ids[Lead], ids[StageMove]
    random_ = rng.random
    choices = rng.choices
    stage_ids = plan.stage_ids
    stage_count = len(stage_ids)
    for i in range(count):
        created = plan.arrival((first_index + i + random_()) / batch_total)
        created_text = ts(created)

        province = choices(plan.provinces, cum_weights=plan.province_cum_weights)[0]
        phone, city = province.number(lead_id)

        industry = choices(names.INDUSTRY_NAMES, cum_weights=names.INDUSTRY_CUM_WEIGHTS)[0]
        trade, domain_suffix = _pick(rng, names.INDUSTRIES[industry])
        brand, brand_pinyin = _pick(rng, names.BRANDS)
        size = choices(SIZES, cum_weights=SIZE_CUM_WEIGHTS)[0]
        incorporated = "股份有限公司" if size == "1000+" and random_() < 0.5 else "有限公司"
        company = f"{city}{brand}{trade}{incorporated}"
        chunk.customers.append(
            (customer_id, created_text, created_text, company, company_key(company), industry, size,
             province.code, city)
        )  # fmt: skip

        surname, surname_pinyin = choices(names.SURNAMES, cum_weights=names.SURNAME_CUM_WEIGHTS)[0]
        given, given_pinyin = _pick(rng, names.GIVEN_NAMES)
        source = choices(CHANNELS, cum_weights=CHANNEL_CUM_WEIGHTS)[0]
        wecom_id = _wecom_external_id(rng) if source == "wecom" or random_() < 0.08 else ""
        email = ""
        if random_() < 0.35:
            tld = "com" if random_() < 0.7 else "cn"
            email = f"{given_pinyin}.{surname_pinyin}@{brand_pinyin}-{domain_suffix}.{tld}"
        chunk.contact_provinces.append(province)
        chunk.contacts.append(
            (contact_id, created_text, created_text, customer_id, surname + given, _pick(rng, names.TITLES),
             phone, wecom_id, email)
        )  # fmt: skip

        if source == "douyin":
            campaign = f"抖音·{int(created_text[5:7])}月{_pick(rng, names.DOUYIN_THEMES)}"
        elif source == "card":
            campaign = f"{created_text[:4]}{_pick(rng, names.TRADE_SHOWS)}"
        elif source == "web_form":
            campaign = _pick(rng, names.WEB_FORM_CAMPAIGNS)
        elif source == "referral":
            campaign = "老客转介"
        else:
            campaign = ""

        amount = SIZE_MEDIAN_AMOUNT[size] * math.exp(rng.gauss(0.0, 0.6))
        amount_text = f"{min(max(int(amount / 100) * 100, MIN_AMOUNT), MAX_AMOUNT)}.00"

        owners = plan.owners_by_region_id.get(province.region_id or 0, [])
        pooled = not owners or random_() < POOLED_SHARE
        owner_id = None if pooled else owners[int(random_() * len(owners))]
        manager_id = plan.manager_by_region_id.get(province.region_id or 0)

        moves = stage_history(
            rng=rng,
            created=created,
            now=plan.now,
            stage_count=stage_count,
            source=source,
            pooled=pooled,
            rework=plan.rework,
        )
        for move in moves:
            if move.actor == ACTOR_OWNER:
                actor = owner_id
            elif move.actor == ACTOR_MANAGER:
                actor = manager_id
            else:
                actor = None
            chunk.moves.append(
                (move_id, lead_id, None if move.from_index is None else stage_ids[move.from_index],
                 stage_ids[move.to_index], move.from_status, move.to_status, actor, ts(move.at), move.note,
                 move.reason, "{}", plan.explanation(move))
            )  # fmt: skip
            move_id += 1
        last = moves[-1]
        status = last.to_status
        chunk.outcomes[status] += 1
        chunk.leads.append(
            (lead_id, created_text, ts(last.at), f"{brand}{trade} · {_pick(rng, names.DEAL_ITEMS)}",
             customer_id, contact_id, source, campaign, owner_id, province.region_id, plan.pipeline_id,
             stage_ids[last.to_index], status, last.reason if status == LOST else "", amount_text,
             ts(stage_entered_at(moves)), None if pooled else created_text,
             None if status == OPEN else ts(last.at))
        )  # fmt: skip
        customer_id += 1
        contact_id += 1
        lead_id += 1
    return chunk


def _taken(column: str, values: list[str]) -> set[str]:
    """Which of `values` some contact already has (the column is unique among non-empty values)."""
    taken: set[str] = set()
    for start in range(0, len(values), 2000):  # well below SQLite's limit on bound parameters
        batch = values[start : start + 2000]
        # `.exclude(…="")` repeats the unique index's condition, so SQLite can use the partial index.
        found = Contact.objects.filter(**{f"{column}__in": batch}).exclude(**{column: ""})
        taken.update(found.values_list(column, flat=True))
    return taken


def identities_make_unique(chunk: Chunk, *, salt: str) -> int:
    """Redraw the phones and WeCom ids of `chunk` that some contact already has; returns how many.

    A phone or WeCom id identifies one person (contact_phone_unique, SPEC C1.4). Generated numbers
    never collide with each other (`ProvinceNumbers`), but a contact from intake or an import may
    hold one. Redraws come from a stream keyed by the contact id — still deterministic for a given
    database — and keep the province (the city may differ from the company's: people move).
    """
    phones = [row[_PHONE_COLUMN] for row in chunk.contacts]
    wecom_ids = [row[_WECOM_COLUMN] for row in chunk.contacts if row[_WECOM_COLUMN]]
    taken_phones, taken_wecom = _taken("phone", phones), _taken("wecom_external_id", wecom_ids)
    seen_phones: set[str] = set()
    seen_wecom: set[str] = set()
    redrawn = 0
    for i, row in enumerate(chunk.contacts):
        phone, wecom_id = row[_PHONE_COLUMN], row[_WECOM_COLUMN]
        if phone in taken_phones or phone in seen_phones:
            rng = random.Random(f"{salt}:phone:{row[0]}")
            province = chunk.contact_provinces[i]
            for _ in itertools.count():
                phone, _city = province.number(rng.randrange(province.size))
                if phone not in seen_phones and phone not in taken_phones and not _taken("phone", [phone]):
                    break
        if wecom_id and (wecom_id in taken_wecom or wecom_id in seen_wecom):
            rng = random.Random(f"{salt}:wecom:{row[0]}")
            while True:
                wecom_id = _wecom_external_id(rng)
                if wecom_id not in seen_wecom and not _taken("wecom_external_id", [wecom_id]):
                    break
        seen_phones.add(phone)
        if wecom_id:
            seen_wecom.add(wecom_id)
        if phone != row[_PHONE_COLUMN] or wecom_id != row[_WECOM_COLUMN]:
            chunk.contacts[i] = (*row[:_PHONE_COLUMN], phone, wecom_id, *row[_WECOM_COLUMN + 1 :])
            redrawn += 1
    return redrawn
