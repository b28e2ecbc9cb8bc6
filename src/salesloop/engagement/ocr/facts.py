"""Key facts pulled out of OCR'd evidence text (SPEC C3.4, issue 6 item 3): company names, amounts in
yuan, dates, phone numbers, and the text cues of a signature/seal page. Pure functions of the lines
the engine read (and, for dates without a year, a reference day), so reading the same file again
derives the same facts.

Every fact carries the line it came from (`line`: index into the stored lines) and a confidence:
the engine's score of that line times how sure the pattern is (a full 有限公司 name is surer than a
bare 科技 suffix). docs/ocr.md lists the patterns and their certainties.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from salesloop.core.ocr import OcrLine
from salesloop.crm.phones import PhoneError, phone_parse

HAN = r"\u3400-\u4dbf\u4e00-\u9fff"


@dataclass(frozen=True)
class Fact:
    kind: str  # company | amount | date | phone
    value: str  # normalised: the name; yuan as a decimal string; ISO date; E.164
    text: str  # what was read, as it stands on the line
    line: int  # index of the line in the stored OCR lines
    confidence: float
    detail: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "value": self.value,
            "text": self.text,
            "line": self.line,
            "confidence": self.confidence,
        }
        if self.detail:
            data.update(self.detail)
        return data


def plain(text: str) -> str:
    """NFKC: full-width digits, colons, ¥ and brackets made plain, as OCR mixes both widths."""
    return unicodedata.normalize("NFKC", text or "")


def _confidence(score: float, certainty: float) -> float:
    return round(max(0.0, min(1.0, float(score) * certainty)), 3)


# ---- companies ------------------------------------------------------------------------------

# Longest first: the alternation must prefer 股份有限公司 over 公司 at the same end.
COMPANY_SUFFIXES_STRONG = (
    "股份有限公司",
    "有限责任公司",
    "集团有限公司",
    "有限公司",
    "集团公司",
    "集团",
    "公司",
    "研究院",
    "研究所",
    "事务所",
)
COMPANY_SUFFIXES_WEAK = ("科技", "工作室", "商行", "工厂")
COMPANY_RE = re.compile(
    rf"(?P<name>[{HAN}A-Za-z0-9()]{{2,40}}?(?:{'|'.join(COMPANY_SUFFIXES_STRONG)}))(?![{HAN}])"
)
WEAK_COMPANY_RE = re.compile(rf"^(?P<name>[{HAN}]{{2,20}}(?:{'|'.join(COMPANY_SUFFIXES_WEAK)}))$")
# Labels in front of a party's name on contracts and minutes ("甲方（盖章）：", "客户名称：").
PARTY_LABEL_RE = re.compile(
    r"^(?:甲方|乙方|丙方|买方|卖方|需方|供方|委托方|受托方|客户名称|客户|单位名称|公司名称|单位|签约单位|"
    r"出卖人|买受人|发包人|承包人)?\s*(?:\((?:盖章|公章|签章|签字|签字盖章|章)\))?\s*[:：]?\s*"
)
SEAL_WORDS_RE = re.compile(r"\((?:盖章|公章|签章|签字|签字盖章|章)\)")


def _company_clean(name: str) -> str:
    name = SEAL_WORDS_RE.sub("", name)
    name = PARTY_LABEL_RE.sub("", name, count=1)
    return name.strip("()")


def companies_extract(lines: list[OcrLine]) -> list[Fact]:
    """Organisation names ending in a company suffix; each distinct name once, its best reading."""
    found: dict[str, Fact] = {}
    for index, line in enumerate(lines):
        text = re.sub(r"\s+", "", plain(line.text))
        text = SEAL_WORDS_RE.sub("", text)
        segments = re.split(r"[:;,。,、]", text)
        for segment in segments:
            segment = _company_clean(segment)
            matches = list(COMPANY_RE.finditer(segment))
            for match in matches:
                name = _company_clean(match.group("name"))
                if len(name) < 4 or name in COMPANY_SUFFIXES_STRONG:
                    continue
                fact = Fact("company", name, match.group("name"), index, _confidence(line.score, 0.95))
                if name not in found or found[name].confidence < fact.confidence:
                    found[name] = fact
            if not matches:
                weak = WEAK_COMPANY_RE.match(segment)
                if weak and len(weak.group("name")) >= 4:
                    name = weak.group("name")
                    fact = Fact("company", name, name, index, _confidence(line.score, 0.6))
                    if name not in found or found[name].confidence < fact.confidence:
                        found[name] = fact
    return sorted(found.values(), key=lambda f: (f.line, f.value))


COMPANY_NOISE = ("股份有限公司", "有限责任公司", "有限公司", "股份", "集团", "公司", "中国")


def company_key(name: str) -> str:
    """A company name reduced to what tells companies apart: no legal form (有限公司, 股份, 集团),
    brackets, spaces or case. 「杭州星河（集团）股份有限公司」 → 「杭州星河」."""
    key = re.sub(r"[\s()（）\[\]【】·.,，]", "", plain(name)).lower()
    for word in COMPANY_NOISE:
        key = key.replace(word, "")
    return key


def company_similarity(a: str, b: str) -> float:
    """0-1: 1 when one key contains the other (a short name 「星河新能源」 for the full name), else
    difflib's ratio of the two keys."""
    key_a, key_b = company_key(a), company_key(b)
    if not key_a or not key_b:
        return 0.0
    if len(min(key_a, key_b, key=len)) >= 2 and (key_a in key_b or key_b in key_a):
        return 1.0
    return round(difflib.SequenceMatcher(None, key_a, key_b).ratio(), 3)


COMPANY_MATCH_THRESHOLD = 0.8


# ---- amounts --------------------------------------------------------------------------------

NUMBER = r"\d{1,3}(?:[,，]\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
AMOUNT_RE = re.compile(
    rf"(?P<prefix>人民币|RMB|CNY|[¥￥])?\s*[:：]?\s*(?P<number>{NUMBER})\s*(?P<unit>万元|万|元|圆)?"
)
CAPITAL_DIGITS = {
    "零": 0, "〇": 0, "壹": 1, "贰": 2, "叁": 3, "肆": 4, "伍": 5, "陆": 6, "柒": 7, "捌": 8, "玖": 9,
    "两": 2,
}  # fmt: skip
CAPITAL_UNITS = {"拾": 10, "佰": 100, "仟": 1000}
CAPITAL_RE = re.compile(
    r"(?P<whole>[零〇壹贰叁肆伍陆柒捌玖拾佰仟万亿]+)[元圆](?:(?P<jiao>[零壹贰叁肆伍陆柒捌玖])角)?"
    r"(?:(?P<fen>[壹贰叁肆伍陆柒捌玖])分)?整?"
)


def capital_amount(text: str) -> Decimal | None:
    """人民币大写 (financial numerals): 「壹拾贰万捌仟元整」 → 128000. None when it does not parse."""
    match = CAPITAL_RE.search(text)
    if not match:
        return None
    total, section, digit = 0, 0, 0
    for char in match.group("whole"):
        if char in CAPITAL_DIGITS:
            digit = CAPITAL_DIGITS[char]
        elif char in CAPITAL_UNITS:
            section += (digit or 1) * CAPITAL_UNITS[char]
            digit = 0
        elif char == "万":
            total += (section + digit) * 10_000
            section = digit = 0
        elif char == "亿":
            total = (total + section + digit) * 100_000_000
            section = digit = 0
    total += section + digit
    amount = Decimal(total)
    if match.group("jiao"):
        amount += Decimal(CAPITAL_DIGITS[match.group("jiao")]) / 10
    if match.group("fen"):
        amount += Decimal(CAPITAL_DIGITS[match.group("fen")]) / 100
    return amount if amount > 0 else None


def amount_parse(number: str, unit: str) -> Decimal | None:
    try:
        value = Decimal(number.replace(",", "").replace("，", ""))
    except InvalidOperation:
        return None
    if unit in {"万", "万元"}:
        value *= 10_000
    return value.quantize(Decimal("0.01"))


def amounts_extract(lines: list[OcrLine]) -> list[Fact]:
    """Amounts in yuan: ¥12,800 · 12800元 · 3.5万元 · 人民币12,800 · 人民币壹拾贰万捌仟元整. A bare
    number is not an amount: it needs a currency sign, 人民币, or 元/万元 after it."""
    facts: list[Fact] = []
    for index, line in enumerate(lines):
        text = plain(line.text)
        text_no_dates = DATE_FULL_RE.sub(lambda m: " " * len(m.group(0)), text)
        for match in AMOUNT_RE.finditer(text_no_dates):
            prefix, unit = match.group("prefix") or "", match.group("unit") or ""
            if not prefix and not unit:
                continue
            if unit == "万" and not prefix:
                continue  # 「3万人」 is a headcount; 「¥3.5万」 and 「3.5万元」 are money
            value = amount_parse(match.group("number"), unit)
            if value is None or value <= 0:
                continue
            certainty = 0.95 if prefix and unit else 0.9
            facts.append(
                Fact(
                    "amount",
                    str(value),
                    match.group(0).strip(),
                    index,
                    _confidence(line.score, certainty),
                    {"currency": "CNY"},
                )
            )
        capital = capital_amount(text)
        if capital is not None:
            facts.append(
                Fact(
                    "amount",
                    str(capital.quantize(Decimal("0.01"))),
                    CAPITAL_RE.search(text).group(0),  # type: ignore[union-attr]
                    index,
                    _confidence(line.score, 0.9),
                    {"currency": "CNY", "written": "capital"},
                )
            )
    return _unique(facts)


# ---- dates ----------------------------------------------------------------------------------

DATE_FULL_RE = re.compile(
    r"(?P<y>(?:19|20)\d{2})\s*(?:年\s*(?P<m1>\d{1,2})\s*月\s*(?P<d1>\d{1,2})\s*[日号]?"
    r"|[-/.]\s*(?P<m2>\d{1,2})\s*[-/.]\s*(?P<d2>\d{1,2})(?!\d))"
)
DATE_SHORT_RE = re.compile(r"(?<![\d年])(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]")
# 「日期：    年   月   日」: a date field left blank on a signature page.
DATE_BLANK_RE = re.compile(r"年\s*月\s*日|_{3,}\s*年|日期\s*[:：]?\s*$")


def _date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def year_infer(month: int, day: int, reference: dt.date) -> dt.date | None:
    """「11月28日」 without a year: the year that puts the date nearest the reference day (the day
    the file was attached), so a December note read in January is last year's."""
    candidates = [
        d for y in (reference.year - 1, reference.year, reference.year + 1) if (d := _date(y, month, day))
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda d: (abs((d - reference).days), -d.year))


def dates_extract(lines: list[OcrLine], *, reference: dt.date) -> list[Fact]:
    facts: list[Fact] = []
    for index, line in enumerate(lines):
        text = plain(line.text)
        for match in DATE_FULL_RE.finditer(text):
            month = match.group("m1") or match.group("m2")
            day = match.group("d1") or match.group("d2")
            value = _date(int(match.group("y")), int(month), int(day))
            if value is not None:
                facts.append(
                    Fact(
                        "date",
                        value.isoformat(),
                        match.group(0).strip(),
                        index,
                        _confidence(line.score, 0.95),
                    )
                )
        for match in DATE_SHORT_RE.finditer(DATE_FULL_RE.sub(lambda m: " " * len(m.group(0)), text)):
            value = year_infer(int(match.group("m")), int(match.group("d")), reference)
            if value is not None:
                facts.append(
                    Fact(
                        "date",
                        value.isoformat(),
                        match.group(0).strip(),
                        index,
                        _confidence(line.score, 0.8),
                        {"year_inferred": True},
                    )
                )
    return _unique(facts)


# ---- phones ---------------------------------------------------------------------------------

PHONE_RUN_RE = re.compile(r"(?<![\d.])[+(]?\d[\d\s()\-]{5,}\d(?![\d.])")


def phones_extract(lines: list[OcrLine]) -> list[Fact]:
    """Mobile and landline numbers, normalised to E.164 by `crm.phones` (the rules leads use)."""
    facts: list[Fact] = []
    for index, line in enumerate(lines):
        text = plain(line.text)
        # Dates and amounts are digit runs too: blank them out before looking for numbers.
        text = DATE_FULL_RE.sub(lambda m: " " * len(m.group(0)), text)
        text = re.sub(rf"(?:[¥]\s*)?(?:{NUMBER})\s*(?:万元|元)", lambda m: " " * len(m.group(0)), text)
        for run in PHONE_RUN_RE.findall(text):
            try:
                info = phone_parse(run)
            except PhoneError:
                continue
            if info.kind not in {"mobile", "landline", "service"}:
                continue
            facts.append(
                Fact(
                    "phone",
                    info.e164,
                    run.strip(),
                    index,
                    _confidence(line.score, 0.95),
                    {"phone_kind": info.kind},
                )
            )
    return _unique(facts)


def _unique(facts: list[Fact]) -> list[Fact]:
    """One fact per value: the most confident reading (ties: the first line)."""
    best: dict[str, Fact] = {}
    for fact in facts:
        if fact.value not in best or best[fact.value].confidence < fact.confidence:
            best[fact.value] = fact
    return sorted(best.values(), key=lambda f: (f.line, f.value))


# ---- the signature / seal page --------------------------------------------------------------

SIGN_CUE_RE = re.compile(r"签字|签名|盖章|签章|公章|印章|授权代表|法定代表人|代表人")
SIGN_HAND_RE = re.compile(r"签字|签名|签章|授权代表|代表人")
FILLER_RE = re.compile(r"[\s_＿\-—.·()（）:：]|盖章|签字|签章|签名|公章|日期|年|月|日")


@dataclass(frozen=True)
class SignCues:
    """What the text says about a signature page: the cue lines (签字/盖章 …) and which of them
    have something written next to them, and whether a date is filled in or left blank."""

    cue_lines: list[int]
    filled_lines: list[int]
    date_filled: bool
    date_blank: bool

    @property
    def is_signature_page(self) -> bool:
        return bool(self.cue_lines)


def _same_row(a: OcrLine, b: OcrLine) -> bool:
    overlap = min(a.bottom, b.bottom) - max(a.top, b.top)
    return overlap > 0.5 * min(a.height, b.height) and b.left >= a.right - 5


def sign_cues(lines: list[OcrLine], dates: list[Fact]) -> SignCues:
    """A line is a cue when its label (the text before the colon, or a short line without one)
    names 签字/盖章…; a sentence that mentions them (「自双方签字盖章之日起生效」) only marks the page
    as a signature page. A 签字 cue counts as filled when the text after its label — or another line
    on the same row, to its right, that is not itself a label — holds at least two real characters.
    盖章 cues are not filled by text (the printed party name follows them): the seal shows in the
    image (`seal.red_seal_find`)."""
    cue_lines, filled = [], []
    for index, line in enumerate(lines):
        text = plain(line.text)
        if not SIGN_CUE_RE.search(text):
            continue
        cue_lines.append(index)
        parts = re.split(r"[:：]", text, maxsplit=1)
        label, rest = (parts[0], parts[1]) if len(parts) == 2 else (text, "")
        if len(FILLER_RE.sub("", label)) > 12:
            continue  # a sentence, not a label
        if not SIGN_HAND_RE.search(label):
            continue  # 「甲方（盖章）：」: the seal is judged on the image
        content = FILLER_RE.sub("", rest)
        if len(content) < 2:
            neighbours = [
                FILLER_RE.sub("", plain(other.text))
                for other in lines
                if other is not line and _same_row(line, other) and not SIGN_CUE_RE.search(plain(other.text))
            ]
            content = max(neighbours, key=len, default="")
            # the next label on the row (「日期」, another party) is not a signature
            if content and re.fullmatch(r"(?:甲方|乙方|日期|地址|电话)+", content):
                content = ""
        if len(content) >= 2:
            filled.append(index)
    date_lines = {fact.line for fact in dates}
    date_filled = bool(date_lines)
    date_blank = any(
        DATE_BLANK_RE.search(plain(line.text)) and i not in date_lines for i, line in enumerate(lines)
    )
    return SignCues(cue_lines=cue_lines, filled_lines=filled, date_filled=date_filled, date_blank=date_blank)


def facts_extract(lines: list[OcrLine], *, reference: dt.date) -> dict[str, list[dict[str, Any]]]:
    """All key facts of one attachment's lines, as stored (JSON)."""
    dates = dates_extract(lines, reference=reference)
    return {
        "companies": [f.as_json() for f in companies_extract(lines)],
        "amounts": [f.as_json() for f in amounts_extract(lines)],
        "dates": [f.as_json() for f in dates],
        "phones": [f.as_json() for f in phones_extract(lines)],
    }
