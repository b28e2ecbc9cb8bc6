"""The rule-set document (C8.1): what a routing version says, as JSON a person can read and write.

```json
{
  "name": "按区域轮转",
  "defaults": {"max_open_leads": 300, "max_new_per_day": 40, "respect_working_hours": true},
  "rules": [
    {"id": "south-manufacturing", "name": "华南制造业给行业专家", "priority": 10,
     "when": {"regions": ["south"], "industries": ["制造业"], "weekdays": [1, 2, 3, 4, 5],
              "hours": {"from": "09:00", "to": "18:00"}},
     "pool": {"regions": ["south"]}, "strategy": "specialty"},
    {"id": "by-region", "name": "按区域轮转", "priority": 20, "when": {},
     "pool": {"lead_region": true}, "strategy": "round_robin"}
  ],
  "fallback": {"pool": {"regions": ["east", "south"]}, "strategy": "least_loaded"}
}
```

Rules run by ascending `priority` (unique); the first whose conditions all hold and that has an
eligible candidate wins; the mandatory `fallback` catches the rest. A condition list matches any of
its values; an absent condition matches everything. Pools name reps by username, teams by name,
regions by code. `parse` refuses a bad document with the path of each error
(`rules[1].pool.users[0]`).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from salesloop.accounts.geography import PROVINCE_CODE_BY_NAME, province_code
from salesloop.crm.models import Channel


class Strategy(StrEnum):
    ROUND_ROBIN = "round_robin"
    NEAREST_REGION = "nearest_region"
    SPECIALTY = "specialty"
    WEIGHTED = "weighted"
    LEAST_LOADED = "least_loaded"


STRATEGY_SUMMARY = {
    Strategy.ROUND_ROBIN: "turns within the pool, in a rotation kept in the database",
    Strategy.NEAREST_REGION: "reps of the region the lead's province belongs to, in turns",
    Strategy.SPECIALTY: "reps whose specialty tags include the lead's industry, in turns",
    Strategy.WEIGHTED: "shares in proportion to each rep's weight",
    Strategy.LEAST_LOADED: "the rep with the fewest open leads",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Hours(_Strict):
    start: dt.time = Field(alias="from")
    end: dt.time = Field(alias="to")

    def contains(self, moment: dt.time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end  # a night window, e.g. 20:00–08:00


class Conditions(_Strict):
    sources: list[str] = []
    provinces: list[str] = []
    regions: list[str] = []
    industries: list[str] = []
    cities: list[str] = []
    fields: dict[str, list[str]] = {}
    weekdays: list[int] = []
    hours: Hours | None = None

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        for item in value:
            if item not in Channel.values:
                raise ValueError(f"{item!r} is not a channel; one of {', '.join(Channel.values)}")
        return value

    @field_validator("provinces")
    @classmethod
    def _provinces(cls, value: list[str]) -> list[str]:
        codes = []
        for item in value:
            code = item if item in PROVINCE_CODE_BY_NAME.values() else province_code(item)
            if code is None:
                raise ValueError(f"{item!r} is not a province (a name like 广东 or a code like 44)")
            codes.append(code)
        return codes

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        for item in value:
            if not 1 <= item <= 7:
                raise ValueError("weekdays are 1 (Monday) to 7 (Sunday)")
        return value

    def is_empty(self) -> bool:
        return (
            not any(
                (
                    self.sources,
                    self.provinces,
                    self.regions,
                    self.industries,
                    self.cities,
                    self.fields,
                    self.weekdays,
                )
            )
            and self.hours is None
        )


class Pool(_Strict):
    """Who may receive the rule's leads: the union of the named teams, regions and users, and — with
    `lead_region` — the reps of the region the lead belongs to."""

    teams: list[str] = []
    regions: list[str] = []
    users: list[str] = []
    lead_region: bool = False

    @model_validator(mode="after")
    def _not_empty(self) -> Pool:
        if not (self.teams or self.regions or self.users or self.lead_region):
            raise ValueError("a pool names at least one team, region or user, or sets lead_region")
        return self


class Caps(_Strict):
    max_open_leads: int | None = Field(default=None, ge=1)
    max_new_per_day: int | None = Field(default=None, ge=1)


class Defaults(_Strict):
    max_open_leads: int | None = Field(default=None, ge=1)
    max_new_per_day: int | None = Field(default=None, ge=1)
    respect_working_hours: bool = True


class _Routing(_Strict):
    pool: Pool
    strategy: Strategy
    weights: dict[str, int] = {}
    caps: Caps = Caps()

    @model_validator(mode="after")
    def _weights(self) -> _Routing:
        if self.strategy == Strategy.WEIGHTED:
            if not self.weights:
                raise ValueError('a weighted rule gives each rep a weight: {"username": 2, ...}')
            for name, weight in self.weights.items():
                if weight < 1:
                    raise ValueError(f"weights: {name!r} needs a weight of at least 1")
        elif self.weights:
            raise ValueError("weights are only read by the weighted strategy")
        return self


class Rule(_Routing):
    id: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.\-]+$")
    name: str = Field(min_length=1, max_length=120)
    priority: int
    when: Conditions = Conditions()


class Fallback(_Routing):
    name: str = "兜底规则"


class RuleSetDefinition(_Strict):
    name: str = Field(min_length=1, max_length=120)
    description: str = ""
    defaults: Defaults = Defaults()
    rules: list[Rule] = Field(default=[], max_length=500)
    fallback: Fallback

    @model_validator(mode="after")
    def _unique(self) -> RuleSetDefinition:
        seen_ids: dict[str, int] = {}
        seen_priorities: dict[int, int] = {}
        for index, rule in enumerate(self.rules):
            if rule.id in seen_ids or rule.id == "fallback":
                raise ValueError(
                    f"rules[{index}].id: {rule.id!r} is used twice (ids are unique; 'fallback' is taken)"
                )
            if rule.priority in seen_priorities:
                other = seen_priorities[rule.priority]
                raise ValueError(
                    f"rules[{index}].priority: {rule.priority} is also rules[{other}]'s;"
                    " priorities are explicit and unique"
                )
            seen_ids[rule.id] = index
            seen_priorities[rule.priority] = index
        return self

    def ordered_rules(self) -> list[Rule]:
        return sorted(self.rules, key=lambda rule: rule.priority)


class RuleSetInvalid(ValueError):
    """A rule set that cannot be used; `errors` are (path, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{path}: {message}" for path, message in errors))


def _path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(document)"


def parse(document: Any) -> RuleSetDefinition:
    """The document as a definition, or RuleSetInvalid naming the path of every error."""
    if not isinstance(document, dict):
        raise RuleSetInvalid([("(document)", "a rule set is a JSON object")])
    if "fallback" not in document:
        raise RuleSetInvalid([("fallback", 'a fallback rule is mandatory: {"pool": …, "strategy": …}')])
    try:
        return RuleSetDefinition.model_validate(document)
    except ValidationError as exc:
        errors = []
        for error in exc.errors():
            message = str(error["msg"]).removeprefix("Value error, ")
            path = _path(tuple(error["loc"]))
            if path == "(document)" and message.startswith("rules[") and ": " in message:
                path, message = message.split(": ", 1)  # a whole-document check names its own path
            errors.append((path, message))
        raise RuleSetInvalid(errors) from None


def json_schema() -> dict[str, Any]:
    return RuleSetDefinition.model_json_schema(by_alias=True)
