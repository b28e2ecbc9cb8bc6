"""Channel adapters: how each kind of source is read (SPEC C1.1).

Receiving (signature checks, splitting a batch into items, the channel's own id) happens in
`intake.hooks`; reading an item into an `Arrival` happens here, through the source's field
mapping, so that a fixed mapping followed by a retry re-reads the stored raw payload.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, fields
from typing import Any

from django.utils import timezone

from salesloop.core import clock

# Our fields an item can be mapped onto.
ARRIVAL_FIELDS = (
    "external_id",
    "contact_name",
    "phone",
    "email",
    "wecom_external_id",
    "company",
    "job_title",
    "province",
    "city",
    "message",
    "campaign",
    "transcript",
    "called_number",
    "started_at",
    "ended_at",
    "occurred_at",
    "industry",
    "referrer_customer_id",
)

# Default field mapping per source kind: our field -> dotted path in the item.
DEFAULT_MAPPINGS: dict[str, dict[str, str]] = {
    # Ocean Engine / 巨量引擎 lead push
    "douyin": {
        "external_id": "clue_id",
        "contact_name": "name",
        "phone": "telephone",
        "province": "province_name",
        "city": "city_name",
        "message": "remark",
        "company": "remark_dict.公司名称",
        "campaign": "ad_name",
        "occurred_at": "create_time_detail",
    },
    "web_form": {
        "external_id": "submission_id",
        "contact_name": "name",
        "phone": "phone",
        "company": "company",
        "message": "message",
        "email": "email",
    },
    "call_400": {
        "external_id": "call_id",
        "phone": "caller",
        "called_number": "called",
        "started_at": "start_time",
        "ended_at": "end_time",
        "transcript": "transcript",
        "contact_name": "caller_name",
        "company": "company",
    },
    "wecom": {
        "external_id": "event_key",
        "wecom_external_id": "ExternalUserID",
        "contact_name": "Name",
        "occurred_at": "CreateTime",
        "message": "State",
    },
    "referral": {
        "external_id": "referral_id",
        "contact_name": "name",
        "phone": "phone",
        "company": "company",
        "message": "message",
        "referrer_customer_id": "referrer_customer_id",
        "email": "email",
    },
    "card": {
        "external_id": "card_id",
        "contact_name": "name",
        "phone": "phone",
        "company": "company",
        "job_title": "title",
        "email": "email",
    },
    "api": {field_name: field_name for field_name in ARRIVAL_FIELDS if field_name != "external_id"}
    | {"external_id": "id", "contact_name": "name", "job_title": "title"},
}


class MappingError(ValueError):
    """The item cannot be read with the source's mapping; the message names the field and path."""


@dataclass
class Arrival:
    external_id: str = ""
    contact_name: str = ""
    phone: str = ""
    email: str = ""
    wecom_external_id: str = ""
    company: str = ""
    job_title: str = ""
    province: str = ""
    city: str = ""
    message: str = ""
    campaign: str = ""
    transcript: str = ""
    called_number: str = ""
    started_at: str = ""
    ended_at: str = ""
    occurred_at: str = ""
    industry: str = ""
    referrer_customer_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        # Field by field rather than dataclasses.asdict, whose deep copy costs more than the rest
        # of reading a payload; `extra` is copied, its values are the payload's own.
        values = ((f.name, getattr(self, f.name)) for f in fields(self))
        return {k: (dict(v) if k == "extra" else v) for k, v in values if v not in ("", {}, None)}


def mapping_for(kind: str, overrides: dict[str, str] | None) -> dict[str, str]:
    mapping = dict(DEFAULT_MAPPINGS.get(kind, {}))
    for ours, path in (overrides or {}).items():
        if path in ("", None):
            mapping.pop(ours, None)
        else:
            mapping[ours] = path
    return mapping


def mapping_validate(mapping: Any) -> dict[str, str]:
    """A field mapping from configuration: refused with the offending key named."""
    if not isinstance(mapping, dict):
        raise MappingError("field_mapping must be an object of our field -> payload path")
    for ours, path in mapping.items():
        if ours not in ARRIVAL_FIELDS:
            raise MappingError(f"field_mapping.{ours}: unknown field; one of {', '.join(ARRIVAL_FIELDS)}")
        if path is not None and (not isinstance(path, str) or len(path) > 200):
            raise MappingError(f"field_mapping.{ours}: a path is a string like 'remark_dict.公司名称'")
    return mapping


def _lookup(item: Any, path: str) -> Any:
    current = item
    for part in path.split("."):
        if isinstance(current, str) and current.startswith("{"):
            try:  # Ocean Engine sends remark_dict as a JSON string in some versions
                current = json.loads(current)
            except ValueError:
                return None
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
        if current is None:
            return None
    return current


def arrival_read(kind: str, overrides: dict[str, str] | None, item: Any) -> Arrival:
    if not isinstance(item, dict):
        raise MappingError("the payload is not a JSON object")
    arrival = Arrival()
    for ours, path in mapping_for(kind, overrides).items():
        value = _lookup(item, path)
        if value is None:
            continue
        if isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False)
        text = str(value).strip()
        if "\x00" in text:
            raise MappingError(f"{ours} (from '{path}') contains a NUL character")
        setattr(arrival, ours, text[:4000] if ours in {"transcript", "message"} else text[:200])
    arrival.extra = {k: item[k] for k in item if k in {"ad_name", "module_name", "app_name", "remark_dict"}}
    return arrival


def parse_time(text: str) -> dt.datetime | None:
    """Channel times: unix seconds or milliseconds, ISO 8601, or 'YYYY-MM-DD HH:MM:SS' in local time."""
    if not text:
        return None
    try:
        if text.isdigit():
            seconds = int(text) / (1000 if len(text) >= 13 else 1)
            return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
        moment = dt.datetime.fromisoformat(text.replace("/", "-"))
    except (ValueError, OverflowError, OSError):
        return None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=clock.org_tz())
    return moment
