"""One row of a file → a clean candidate, or the reason it cannot be imported (SPEC C1.3, C1.5).

The checks are those of the services (`crm.services`, `intake.services`): a phone must be a real
number, a person needs a phone, e-mail or WeCom id, text must fit its column, an amount must be an
amount. Reasons are in Chinese (the report is read in Excel by the team that
exported the file) and name the column as the file does, so the row can be fixed and the report
imported again. This runs once per row of a million-row file: no queries, no model instances
(it runs in the import's reader process, see `pipeline`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from operator import itemgetter

import orjson
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from salesloop.accounts.geography import PROVINCE_CODE_BY_NAME, province_code
from salesloop.crm.models import company_key
from salesloop.crm.phones import PhoneError
from salesloop.intake.imports.mapping import FIELDS
from salesloop.intake.imports.phone_fast import phone_normalise

# Column widths of the records a row becomes (crm.models); the JSON-kept extras get a sane cap.
MAX_LENGTH = {
    "name": 80,
    "title": 80,
    "company": 200,
    "email": 254,
    "wecom_external_id": 64,
    "industry": 40,
    "city": 40,
    "campaign": 120,
    "origin": 200,
    "external_id": 200,
    "stage_hint": 200,
    "remark": 5000,
}
UNNAMED_PERSON = "未具名"
# The common shape of an e-mail address; a subset of what Django's validator accepts, so a match
# needs no further check and only unusual addresses pay for the full validator.
_PLAIN_EMAIL = re.compile(
    r"[a-z0-9_%+-]+(?:\.[a-z0-9_%+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}"
)
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff]")
_AMOUNT_NOISE = str.maketrans("", "", " ,，¥￥$元")
_AMOUNT_UNITS = {"万": Decimal(10_000), "亿": Decimal(100_000_000)}
_CENT = Decimal("0.01")
_AMOUNT_LIMIT = Decimal("1e12")
_ZERO = Decimal("0.00")
COMPANY_KEY_CACHE = 200_000  # company name → company_key, across rows


class _Draft:
    """A row being checked: defaults live on the class, so a row sets only what it has."""

    name = company = title = email = wecom = phone = ""
    city = industry = remark = origin = campaign = external_id = stage_hint = ""
    province_code: str | None = None
    amount = _ZERO

    def __init__(self, row_number: int, cells: list[str]) -> None:
        self.row_number = row_number
        self.cells = cells


class Candidate(tuple):
    """A row that passed the checks: identity keys normalised, text trimmed, province resolved.

    A tuple, read by name: a million of them cross from the reader process to the run (see
    `pipeline`), and a tuple unpickles ~3× faster than an object with a `__dict__` (measured:
    26 ms against 86 ms per 10,000 rows), which is CPU the run does not spend.

    What the run would encode from the row alone is encoded here, in the reader process, which
    has CPU to spare: the row as a JSON object (`body`, a touch event's payload), its reading
    (`normalised_json`, the event's normalised fields) and the extras a first move's `filled`
    names (`extras`). The run's planning thread spent ~3 s of a million-row run encoding them
    (py-spy), time the writer waited out for the next chunk's plan; and one string unpickles
    faster than the row's cells, one string each."""

    __slots__ = ()

    row_number: int = property(itemgetter(0))  # type: ignore[assignment]
    body: str = property(itemgetter(1))  # type: ignore[assignment]
    name: str = property(itemgetter(2))  # type: ignore[assignment]
    company: str = property(itemgetter(3))  # type: ignore[assignment]
    company_key: str = property(itemgetter(4))  # type: ignore[assignment]
    title: str = property(itemgetter(5))  # type: ignore[assignment]
    email: str = property(itemgetter(6))  # type: ignore[assignment]
    wecom: str = property(itemgetter(7))  # type: ignore[assignment]
    phone: str = property(itemgetter(8))  # type: ignore[assignment]
    city: str = property(itemgetter(9))  # type: ignore[assignment]
    industry: str = property(itemgetter(10))  # type: ignore[assignment]
    remark: str = property(itemgetter(11))  # type: ignore[assignment]
    origin: str = property(itemgetter(12))  # type: ignore[assignment]
    campaign: str = property(itemgetter(13))  # type: ignore[assignment]
    external_id: str = property(itemgetter(14))  # type: ignore[assignment]
    stage_hint: str = property(itemgetter(15))  # type: ignore[assignment]
    province_code: str | None = property(itemgetter(16))  # type: ignore[assignment]
    amount: Decimal = property(itemgetter(17))  # type: ignore[assignment]
    normalised_json: str = property(itemgetter(18))  # type: ignore[assignment]
    # the extras (origin, external id, stage hint) as the members of a JSON object, "" for none
    extras: str = property(itemgetter(19))  # type: ignore[assignment]

    @classmethod
    def of(cls, draft: _Draft, key: str, body_keys: Sequence[str]) -> Candidate:
        extras = {name: value for name in EXTRAS if (value := getattr(draft, name))}
        return tuple.__new__(
            cls,
            (
                draft.row_number,
                json_object(zip(body_keys, draft.cells, strict=True)),
                draft.name,
                draft.company,
                key,
                draft.title,
                draft.email,
                draft.wecom,
                draft.phone,
                draft.city,
                draft.industry,
                draft.remark,
                draft.origin,
                draft.campaign,
                draft.external_id,
                draft.stage_hint,
                draft.province_code,
                draft.amount,
                json_object(_normalised(draft).items()),
                json_object(extras.items())[1:-1] if extras else "",
            ),
        )

    def normalised(self) -> dict[str, str | None]:
        """What the import read from the row, kept on a touch event like an adapter's reading."""
        return _normalised(self)


EXTRAS = ("origin", "external_id", "stage_hint")  # kept in a new lead's first move (`filled`)


def _normalised(row: _Draft | Candidate) -> dict[str, str | None]:
    return {
        "name": row.name,
        "phone": row.phone,
        "email": row.email,
        "wecom_external_id": row.wecom,
        "company": row.company,
        "title": row.title,
        "province": row.province_code,
        "city": row.city,
        "industry": row.industry,
        "campaign": row.campaign,
        "origin": row.origin,
        "remark": row.remark,
        "expected_amount": str(row.amount),
        "external_id": row.external_id,
    }


def json_object(pairs: Iterable[tuple[str, str | int | None]]) -> str:
    """The JSON object of text, whole-number and null values, as stored in a JSON column, encoded
    with orjson: ~5× faster than building it with json's string escaper (measured), which at a
    million rows (a first move per lead, two JSON columns per touch) was ~3 s of the run. Compact
    (no spaces), non-ASCII as UTF-8, as the routing traces are written."""
    values = dict(pairs)
    if not _JSON_PLAIN.issuperset(map(type, values.values())):  # at C speed: the reader's every row
        for value in values.values():
            if value is not None and (not isinstance(value, str | int) or isinstance(value, bool)):
                raise TypeError(f"json_object takes text, whole numbers and None, not {type(value).__name__}")
    return orjson.dumps(values).decode()


# The exact types `json_object` takes without looking further. Checking each value with
# `isinstance(value, str | int)` was ~a fifth of the reader process's CPU at a million rows
# (5 of its ~26 s, measured): three objects a row, a dozen values each.
_JSON_PLAIN = frozenset((str, int, type(None)))


def unique_headers(headers: Sequence[str]) -> list[str]:
    """Header names made unique (「电话」, 「电话 (2)」) so a row kept as a JSON object loses no cell."""
    seen: dict[str, int] = {}
    unique = []
    for header in headers:
        count = seen.get(header, 0) + 1
        seen[header] = count
        unique.append(header if count == 1 else f"{header} ({count})")
    return unique


class Rejection(Exception):
    """A row the import refuses; the message is the reason written into the report."""


def amount_parse(text: str) -> Decimal:
    """「12,000」「¥3.5万」「80000元」 → Decimal; the rules of `crm.services._clean_amount`."""
    cleaned = unicodedata.normalize("NFKC", text).translate(_AMOUNT_NOISE).upper().removesuffix("RMB")
    cleaned = cleaned.removesuffix("CNY")
    multiplier = Decimal(1)
    if cleaned[-1:] in _AMOUNT_UNITS:
        multiplier = _AMOUNT_UNITS[cleaned[-1]]
        cleaned = cleaned[:-1]
    try:
        amount = (Decimal(cleaned) * multiplier).quantize(_CENT)
    except (InvalidOperation, ValueError) as exc:
        raise Rejection(f"金额无法识别：{text}") from exc
    if not amount.is_finite() or amount < 0:
        raise Rejection(f"金额不能为负数：{text}")
    if amount >= _AMOUNT_LIMIT:
        raise Rejection(f"金额过大：{text}")
    return amount


def person_name(last: str, first: str) -> str:
    """姓 then 名 without a space for Chinese names (王 + 小明 = 王小明), "First Last" otherwise."""
    if not last or not first:
        return last or first
    if _CJK.search(last) and _CJK.search(first):
        return last + first
    return f"{first} {last}"


# Text fields copied as they are (trimmed, length-checked): field → attribute of the candidate.
_PLAIN_TEXT = {
    "wecom_external_id": "wecom",
    "company": "company",
    "title": "title",
    "city": "city",
    "industry": "industry",
    "origin": "origin",
    "campaign": "campaign",
    "external_id": "external_id",
    "stage_hint": "stage_hint",
}


class RowNormaliser:
    """Built once per job from its mapping; called once per row."""

    def __init__(self, headers: Sequence[str], mapping: Sequence[str]) -> None:
        self.headers = list(headers)
        self.body_keys = unique_headers(self.headers)
        columns: dict[str, list[int]] = {field: [] for field in FIELDS}
        for index, field in enumerate(mapping):
            if field:
                columns[field].append(index)
        self.columns = columns
        # Mobile columns first: a mobile number names a person and says their province;
        # a "Phone" column is often the company's switchboard.
        self.phone_columns = columns["mobile"] + columns["phone"]
        self.email_columns = columns["email"]
        self.remark_columns = columns["remark"]
        first = {field: indexes[0] for field, indexes in columns.items() if indexes}
        self.plain = [
            (attribute, first[field], MAX_LENGTH[field])
            for field, attribute in _PLAIN_TEXT.items()
            if field in first
        ]
        self.name_column = first.get("name")
        self.last_name_column = first.get("last_name")
        self.first_name_column = first.get("first_name")
        self.province_column = first.get("province")
        self.amount_column = first.get("expected_amount")
        self._provinces: dict[str, str | None] = {}
        self._company_keys: dict[str, str] = {}

    def _too_long(self, index: int, limit: int) -> Rejection:
        return Rejection(f"「{self.headers[index]}」超过 {limit} 个字符")

    def __call__(self, row_number: int, cells: list[str]) -> Candidate:
        """The clean candidate of a row; raises Rejection with the reason."""
        row = _Draft(row_number, cells)
        phone_province = phone_city = None
        if self.phone_columns:
            row.phone, phone_province, phone_city = self._phone(cells)
        for index in self.email_columns:
            email = cells[index].strip()
            if email:
                email = email.lower()
                if len(email) > MAX_LENGTH["email"] or not (
                    _PLAIN_EMAIL.fullmatch(email) or _valid_email(email)
                ):
                    raise Rejection(f"「{self.headers[index]}」不是有效的邮箱地址：{email}")
                row.email = email
                break
        for attribute, index, limit in self.plain:
            value = cells[index].strip()
            if value:
                if len(value) > limit:
                    raise self._too_long(index, limit)
                setattr(row, attribute, value)
        if not (row.phone or row.email or row.wecom):
            raise Rejection("没有手机号、邮箱或企业微信ID，无法识别是谁")
        name = cells[self.name_column].strip() if self.name_column is not None else ""
        if not name and (self.last_name_column is not None or self.first_name_column is not None):
            last = cells[self.last_name_column].strip() if self.last_name_column is not None else ""
            given = cells[self.first_name_column].strip() if self.first_name_column is not None else ""
            name = person_name(last, given)
        if len(name) > MAX_LENGTH["name"]:
            raise Rejection(f"姓名超过 {MAX_LENGTH['name']} 个字符")
        if name:
            row.name = name
        else:
            row.name = UNNAMED_PERSON
        if self.province_column is not None:
            row.province_code = self._province(cells[self.province_column].strip())
        if row.province_code is None and phone_province:
            row.province_code = PROVINCE_CODE_BY_NAME.get(phone_province)
            if row.province_code and not row.city:
                row.city = phone_city or ""
        for index in self.remark_columns:
            remark = cells[index].strip()
            if remark:
                if len(remark) > MAX_LENGTH["remark"]:
                    raise self._too_long(index, MAX_LENGTH["remark"])
                row.remark = remark
                break
        if self.amount_column is not None:
            amount = cells[self.amount_column].strip()
            if amount:
                row.amount = amount_parse(amount)
        return Candidate.of(row, self._company_key(row.company) if row.company else "", self.body_keys)

    def _company_key(self, company: str) -> str:
        """A file names the same companies again and again: each key is computed once (bounded
        memory; a recurring company comes back soon)."""
        key = self._company_keys.get(company)
        if key is None:
            if len(self._company_keys) >= COMPANY_KEY_CACHE:
                self._company_keys.clear()
            key = self._company_keys[company] = company_key(company)
        return key

    def _province(self, text: str) -> str | None:
        """A province column holds a few dozen distinct spellings: each is looked up once."""
        if not text:
            return None
        try:
            return self._provinces[text]
        except KeyError:
            code = province_code(text)
            if len(self._provinces) < 10_000:
                self._provinces[text] = code
            return code

    def _phone(self, cells: list[str]) -> tuple[str, str | None, str | None]:
        """The first valid number of the row's phone columns (mobile first), with the province
        and city of a mobile number. A number that is there but invalid rejects the row — as a
        bad number does on every channel — unless another column of the row holds a valid one."""
        first_error: str | None = None
        for index in self.phone_columns:
            raw = cells[index].strip()
            if not raw:
                continue
            try:
                info = phone_normalise(raw)
            except PhoneError as exc:
                if first_error is None:
                    first_error = f"「{self.headers[index]}」号码无效（{exc}）"
                continue
            return info.e164, info.province, info.city
        if first_error is not None:
            raise Rejection(first_error)
        return "", None, None


def _valid_email(email: str) -> bool:
    try:
        validate_email(email)
    except ValidationError:
        return False
    return True
