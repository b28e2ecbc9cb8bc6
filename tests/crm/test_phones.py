"""C1.3: phone numbers to E.164 whatever the writing; invalid ones refused with the reason."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salesloop.crm.phones import PhoneError, phone_parse

FULL_WIDTH = str.maketrans("0123456789+()-", "０１２３４５６７８９＋（）－")

# Mobile prefixes in real use (China Mobile, Unicom, Telecom, Broadnet).
MOBILE_PREFIXES = [
    "130",
    "131",
    "132",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "156",
    "158",
    "159",
    "166",
    "176",
    "177",
    "180",
    "181",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "198",
    "199",
]


@st.composite
def mobile_numbers(draw) -> str:
    return draw(st.sampled_from(MOBILE_PREFIXES)) + draw(st.text("0123456789", min_size=8, max_size=8))


@st.composite
def writings(draw, national: str) -> str:
    prefix = draw(st.sampled_from(["", "+86", "+86 ", "0086", "0086-", "86", "86 ", "(+86)"]))
    groups = [national[:3], national[3:7], national[7:]]
    sep = draw(st.sampled_from(["", " ", "-", ".", "  "]))
    text = prefix + sep.join(groups)
    if draw(st.booleans()):
        text = f"({groups[0]}){sep}{sep.join(groups[1:])}" if not prefix else text
    if draw(st.booleans()):
        text = text.translate(FULL_WIDTH)
    return draw(st.sampled_from(["", " ", "\t"])) + text + draw(st.sampled_from(["", " "]))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_two_writings_of_one_mobile_give_one_key(data):
    national = data.draw(mobile_numbers())
    one = data.draw(writings(national))
    other = data.draw(writings(national))
    assert phone_parse(one).e164 == phone_parse(other).e164 == f"+86{national}"
    assert phone_parse(one).kind == "mobile"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_normalising_is_idempotent(data):
    national = data.draw(mobile_numbers())
    once = phone_parse(data.draw(writings(national))).e164
    assert phone_parse(once).e164 == once


@pytest.mark.parametrize(
    ("raw", "e164", "kind"),
    [
        ("010-6255 8888", "+861062558888", "landline"),
        ("(020) 8888-6666", "+862088886666", "landline"),
        ("0571-8765 4321", "+8657187654321", "landline"),
        ("400-810-8888", "+864008108888", "service"),
        ("4008108888", "+864008108888", "service"),
        ("800 810 8888", "+868008108888", "service"),
    ],
)
def test_landlines_and_service_numbers_are_told_apart(raw, e164, kind):
    info = phone_parse(raw)
    assert (info.e164, info.kind) == (e164, kind)


def test_mobile_numbers_know_their_province_and_city():
    info = phone_parse("13926000000")
    assert (info.province, info.city) == ("广东", "广州")
    assert phone_parse("13800138000").province == "北京"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("12345", "digits"),
        ("abc", "not a phone"),
        ("1380013800", "digits"),
        ("23800138000", "range"),
        ("+86 138 0013 80001", "digits"),
    ],
)
def test_invalid_numbers_are_refused_with_the_reason(raw, reason):
    with pytest.raises(PhoneError, match=reason):
        phone_parse(raw)
