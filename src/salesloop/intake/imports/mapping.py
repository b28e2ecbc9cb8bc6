"""Which column of the file holds which lead field: guessed from the headers, overridable by the user.

The guess knows Chinese spreadsheet headers, plain English ones, and the standard exports of the
CRMs teams move from (SPEC C1.5): a Salesforce leads report ("First Name", "Company / Account",
"Lead Source", "State/Province", "Lead ID" …) or Data Loader file ("FirstName", "MobilePhone",
"LeadSource" …), and a HubSpot contacts export ("Record ID", "Phone Number", "Mobile Phone
Number", "Company Name", "Job Title", "State/Region", "Lifecycle Stage" …).

A mapping is stored as a list with one field name per column ("" = not imported), because headers
repeat in real files and a column's position is the only thing that identifies it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import ValidationError

IGNORE = ""

# field → label shown in the mapping editor. Order is the order of the select.
FIELDS: dict[str, str] = {
    "name": "姓名 Name",
    "last_name": "姓 Last name",
    "first_name": "名 First name",
    "phone": "电话 Phone",
    "mobile": "手机 Mobile",
    "email": "邮箱 E-mail",
    "wecom_external_id": "企业微信ID WeCom id",
    "company": "公司 Company",
    "title": "职位 Job title",
    "province": "省份 Province",
    "city": "城市 City",
    "industry": "行业 Industry",
    "remark": "备注/需求 Notes",
    "origin": "来源 Source",
    "campaign": "活动 Campaign",
    "expected_amount": "预计金额 Amount",
    "external_id": "原系统ID Id in the old system",
    "stage_hint": "原系统阶段 Stage in the old system",
}
IDENTITY_FIELDS = ("phone", "mobile", "email", "wecom_external_id")
# Fields that may be mapped from several columns: the first non-empty value is used.
MULTI_FIELDS = frozenset({"phone", "mobile", "email", "remark"})


def header_key(header: str) -> str:
    """A header reduced for matching: full-width to half-width, lower case, no spaces or punctuation."""
    text = unicodedata.normalize("NFKC", header or "").strip().lower()
    text = re.sub(r"^\ufeff", "", text)
    return re.sub(r"[\s_\-./:：()（）\[\]【】*#]+", "", text)


_EXACT: dict[str, list[str]] = {
    "name": [
        "姓名",
        "联系人",
        "联系人姓名",
        "客户姓名",
        "名字",
        "称呼",
        "name",
        "fullname",
        "contactname",
        "contact",
        "leadname",
    ],
    "last_name": ["姓", "姓氏", "lastname", "surname", "familyname"],
    "first_name": ["名", "firstname", "givenname"],
    "phone": [
        "电话",
        "联系电话",
        "电话号码",
        "固定电话",
        "座机",
        "phone",
        "phonenumber",
        "telephone",
        "tel",
        "businessphone",
        "workphone",
        "officephone",
    ],
    "mobile": [
        "手机",
        "手机号",
        "手机号码",
        "移动电话",
        "mobile",
        "mobilephone",
        "mobilephonenumber",
        "cellphone",
        "cell",
        "mobilenumber",
        "telephone1",
    ],
    "email": [
        "邮箱",
        "电子邮件",
        "电子邮箱",
        "邮件",
        "email",
        "emailaddress",
        "e-mail",
        "mail",
        "workemail",
    ],
    "wecom_external_id": [
        "企业微信",
        "企业微信id",
        "企微id",
        "externaluserid",
        "wecomid",
        "wecomexternalid",
        "企业微信外部联系人id",
    ],
    "company": [
        "公司",
        "公司名称",
        "企业名称",
        "客户名称",
        "单位",
        "单位名称",
        "所在公司",
        "company",
        "companyname",
        "companyaccount",
        "account",
        "accountname",
        "organization",
        "organisation",
    ],
    "title": ["职位", "职务", "岗位", "头衔", "title", "jobtitle", "position", "role"],
    "province": [
        "省份",
        "省",
        "所在省份",
        "地区",
        "省市",
        "province",
        "state",
        "stateprovince",
        "stateregion",
        "region",
    ],
    "city": ["城市", "市", "所在城市", "city", "town"],
    "industry": ["行业", "所属行业", "industry", "sector", "branche"],
    "remark": [
        "备注",
        "需求",
        "客户需求",
        "需求描述",
        "留言",
        "说明",
        "描述",
        "remark",
        "remarks",
        "note",
        "notes",
        "description",
        "comment",
        "comments",
        "message",
    ],
    "origin": [
        "来源",
        "渠道",
        "线索来源",
        "客户来源",
        "来源渠道",
        "source",
        "leadsource",
        "originalsource",
        "channel",
    ],
    "campaign": [
        "活动",
        "广告计划",
        "活动名称",
        "推广计划",
        "计划名称",
        "campaign",
        "campaignname",
        "adname",
        "utmcampaign",
    ],
    "expected_amount": [
        "预计金额",
        "金额",
        "预算",
        "预计成交金额",
        "商机金额",
        "amount",
        "expectedamount",
        "expectedrevenue",
        "budget",
        "dealamount",
    ],
    "external_id": ["leadid", "recordid", "contactid", "id", "线索id", "客户id", "编号", "线索编号", "crmid"],
    "stage_hint": ["leadstatus", "lifecyclestage", "status", "线索状态", "客户阶段", "阶段", "状态"],
}
_EXACT_INDEX: dict[str, str] = {
    header_key(alias): field for field, aliases in _EXACT.items() for alias in aliases
}

# Looser rules for headers like 「客户手机号码」 or "Primary Email": a fragment inside the header.
# Checked in this order, so 「手机」 wins over 「电话」 and "email" over "name".
_CONTAINS: list[tuple[str, str]] = [
    ("手机", "mobile"),
    ("mobile", "mobile"),
    ("邮箱", "email"),
    ("email", "email"),
    ("电话", "phone"),
    ("phone", "phone"),
    ("企业微信", "wecom_external_id"),
    ("公司", "company"),
    ("企业", "company"),
    ("company", "company"),
    ("职位", "title"),
    ("职务", "title"),
    ("省", "province"),
    ("城市", "city"),
    ("行业", "industry"),
    ("金额", "expected_amount"),
    ("预算", "expected_amount"),
    ("备注", "remark"),
    ("需求", "remark"),
    ("来源", "origin"),
    ("渠道", "origin"),
    ("活动", "campaign"),
    ("campaign", "campaign"),
    ("姓名", "name"),
    ("联系人", "name"),
]


# Headers that mention a field but are not it: "Email Opt Out", "Associated Company ID", 「手机归属地」.
_NOT_A_VALUE = (
    "optout",
    "bounce",
    "date",
    "时间",
    "日期",
    "owner",
    "负责人",
    "所有人",
    "归属",
    "count",
    "numberof",
)


def field_guess(header: str) -> str:
    """The field a header names exactly, or else the field a fragment of it suggests."""
    key = header_key(header)
    if not key:
        return IGNORE
    return _EXACT_INDEX.get(key) or _field_by_fragment(key)


def _field_by_fragment(key: str) -> str:
    if key.endswith("id") or any(word in key for word in _NOT_A_VALUE):
        return IGNORE
    for fragment, field in _CONTAINS:
        if fragment in key:
            return field
    return IGNORE


def mapping_guess(headers: Sequence[str]) -> list[str]:
    """One field per column. Exact header names are matched first, fragments only for the columns
    left over; a field is given to one column only (phones, e-mails and notes excepted, where the
    first non-empty column of a row counts), so "Phone" and "Other Phone" do not both become it."""
    keys = [header_key(header) for header in headers]
    mapping = [IGNORE] * len(headers)
    taken: set[str] = set()
    for index, key in enumerate(keys):
        field = _EXACT_INDEX.get(key, IGNORE) if key else IGNORE
        if field and (field in MULTI_FIELDS or field not in taken):
            mapping[index] = field
            taken.add(field)
    for index, key in enumerate(keys):
        if mapping[index] or not key:
            continue
        field = _field_by_fragment(key)
        if field and field not in taken:
            mapping[index] = field
            taken.add(field)
    if "name" in taken:  # a full-name column makes first/last name columns redundant
        mapping = [IGNORE if f in {"first_name", "last_name"} else f for f in mapping]
    return mapping


def mapping_clean(headers: Sequence[str], given: Any) -> list[str]:
    """A user's mapping — a list in column order, or an object from header (or column number) to
    field — checked and turned into the stored list. Unknown fields and headers are refused by
    name; a column a user does not mention keeps no field."""
    width = len(headers)
    if isinstance(given, list | tuple):
        if len(given) != width:
            raise ValidationError(
                {"mapping": f"the file has {width} columns; the mapping lists {len(given)}"}
            )
        mapping = [str(field or IGNORE) for field in given]
    elif isinstance(given, Mapping):
        mapping = [IGNORE] * width
        positions: dict[str, int] = {}
        for index, header in enumerate(headers):
            positions.setdefault(header, index)
        for column, field in given.items():
            column_text = str(column)
            if column_text in positions:
                index = positions[column_text]
            elif column_text.isdigit() and int(column_text) < width:
                index = int(column_text)
            else:
                raise ValidationError({"mapping": f"the file has no column {column_text!r}"})
            mapping[index] = str(field or IGNORE)
    else:
        raise ValidationError({"mapping": "give a list (one field per column) or an object {header: field}"})
    unknown = sorted({field for field in mapping if field and field not in FIELDS})
    if unknown:
        raise ValidationError(
            {"mapping": f"unknown field(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}"}
        )
    repeated = sorted(
        {field for field in mapping if field and field not in MULTI_FIELDS and mapping.count(field) > 1}
    )
    if repeated:
        raise ValidationError({"mapping": f"only one column may be {', '.join(repeated)}"})
    return mapping


def mapping_problem(mapping: Sequence[str]) -> str | None:
    """Why this mapping cannot import anything, or None: without a phone, mobile, e-mail or WeCom
    column no row can name a person, and every row would be rejected."""
    if not any(field in IDENTITY_FIELDS for field in mapping):
        return "no column is mapped to a phone, mobile, e-mail or WeCom id: map at least one"
    return None
