"""Phone numbers to E.164 (SPEC C1.3), with the province and city of Chinese mobile numbers."""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType


class PhoneError(ValueError):
    """A number that cannot be a real phone number; the message says why, in words a user reads."""


@dataclass(frozen=True)
class PhoneInfo:
    e164: str
    kind: str  # mobile | landline | service (400/800) | other
    province: str | None
    city: str | None


def phone_to_e164(raw: str) -> str:
    return phone_parse(raw).e164


def phone_parse(raw: str) -> PhoneInfo:
    text = unicodedata.normalize("NFKC", raw or "").strip()
    if not text:
        raise PhoneError("empty phone number")
    digits = "".join(ch for ch in text if ch.isdigit())
    if text.startswith("00"):
        text = "+" + text[2:]
    elif text.startswith("86") and len(digits) == 13:
        text = "+" + text
    elif digits[:3] in {"400", "800"} and len(digits) == 10:
        text = "+86" + digits
    if not digits or any(ch.isalpha() for ch in text):
        raise PhoneError(f"not a phone number: {raw!r}")
    national = digits
    for country in ("0086", "86"):
        if (text.startswith("+86") or text.startswith("(+86)") or digits.startswith(country)) and len(
            digits
        ) > 11:
            national = digits[len(country) :] if digits.startswith(country) else digits[2:]
            break
    if len(national) < 7:
        raise PhoneError(f"too few digits for a phone number ({len(national)}): {raw!r}")
    if national.startswith("1") and len(national) != 11 and not national.startswith("10"):
        raise PhoneError(f"a mobile number has 11 digits, this has {len(national)}: {raw!r}")
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"not a phone number: {raw!r}") from exc
    if not phonenumbers.is_possible_number(number):
        raise PhoneError(f"wrong number of digits for this kind of number: {raw!r}")
    if not phonenumbers.is_valid_number(number):
        raise PhoneError(f"no such number range: {raw!r}")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    number_type = phonenumbers.number_type(number)
    national = str(number.national_number)
    province = city = None
    if number.country_code == 86 and national[:3] in {"400", "800"}:
        kind = "service"
    elif number_type == PhoneNumberType.MOBILE:
        kind = "mobile"
        if number.country_code == 86:
            province, city = mobile_location(national)
    elif number_type in {PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE}:
        kind = "landline"
    elif number_type == PhoneNumberType.TOLL_FREE:
        kind = "service"
    else:
        kind = "other"
    return PhoneInfo(e164=e164, kind=kind, province=province, city=city)


@functools.lru_cache(maxsize=1)
def _phone_db():  # type: ignore[no-untyped-def]
    from phone import Phone

    return Phone()


@functools.lru_cache(maxsize=65536)
def mobile_location(national: str) -> tuple[str | None, str | None]:
    found = _phone_db().find(national[:7] + "0000")
    if not found:
        return None, None
    return found.get("province") or None, found.get("city") or None
