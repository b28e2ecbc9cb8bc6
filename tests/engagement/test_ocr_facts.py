"""Key facts from OCR'd evidence (issue 6 item 3) as pure functions of the lines read, and the red-seal
image cue: no OCR engine here, so these run in milliseconds."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from salesloop.core.ocr import OcrLine
from salesloop.demo.evidence_images import seal_draw
from salesloop.engagement.ocr import facts as fx
from salesloop.engagement.ocr.seal import red_seal_find
from salesloop.engagement.ocr.search import search_normalise

REFERENCE = dt.date(2026, 11, 28)


def lines_of(*texts: str, score: float = 0.99) -> list[OcrLine]:
    """Lines stacked top to bottom, 60 px apart, as the engine returns them."""
    return [
        OcrLine(
            text=t, box=[[100, 60 * i], [900, 60 * i], [900, 60 * i + 40], [100, 60 * i + 40]], score=score
        )
        for i, t in enumerate(texts)
    ]


def values(facts: list[fx.Fact]) -> list[str]:
    return [f.value for f in facts]


class TestCompanies:
    def test_a_party_label_and_the_seal_note_are_not_part_of_the_name(self):
        facts = fx.companies_extract(
            lines_of("甲方（盖章）：杭州星河新能源科技有限公司", "乙方:上海云启软件有限公司")
        )
        assert values(facts) == ["杭州星河新能源科技有限公司", "上海云启软件有限公司"]
        assert [f.line for f in facts] == [0, 1]

    @pytest.mark.parametrize(
        "name", ["深圳华芯半导体股份有限公司", "北京中关村科技集团", "广州市天河区宏达贸易有限责任公司"]
    )
    def test_each_legal_form_is_recognised(self, name):
        assert values(fx.companies_extract(lines_of(f"客户名称：{name}"))) == [name]

    def test_a_bare_keji_name_counts_only_as_a_whole_line_and_with_less_confidence(self):
        facts = fx.companies_extract(lines_of("星河智联科技", "会上讨论了科技创新的方向"))
        assert values(facts) == ["星河智联科技"]
        assert facts[0].confidence < 0.99 * 0.9

    def test_confidence_is_the_line_score_times_the_pattern_certainty(self):
        (fact,) = fx.companies_extract(lines_of("上海云启软件有限公司", score=0.8))
        assert fact.confidence == pytest.approx(0.8 * 0.95, abs=1e-3)

    @pytest.mark.parametrize(
        ("read", "customer", "same"),
        [
            ("杭州星河新能源科技有限公司", "杭州星河新能源科技有限公司", True),
            ("杭州星河（集团）股份有限公司", "杭州星河集团有限公司", True),
            ("星河新能源", "杭州星河新能源科技有限公司", True),
            ("杭州星河新能源科枝有限公司", "杭州星河新能源科技有限公司", True),  # one character misread
            ("上海云启软件有限公司", "杭州星河新能源科技有限公司", False),
        ],
    )
    def test_company_similarity_ignores_legal_form_brackets_and_small_misreads(self, read, customer, same):
        assert (fx.company_similarity(read, customer) >= fx.COMPANY_MATCH_THRESHOLD) is same

    @given(
        st.text(alphabet="星河云启华芯百川宏达智联新能源医疗器械软件", min_size=2, max_size=12),
        st.sampled_from(["有限公司", "股份有限公司", "有限责任公司", "集团有限公司", "（集团）股份有限公司"]),
        st.sampled_from(["有限公司", "股份有限公司", "集团", ""]),
    )
    def test_the_same_company_under_any_legal_form_matches_itself(self, core, form_a, form_b):
        assert fx.company_similarity(f"{core}{form_a}", f" {core} {form_b}") == 1.0


class TestAmounts:
    @pytest.mark.parametrize(
        ("text", "yuan"),
        [
            ("合同金额：¥12,800", "12800.00"),
            ("合计 12800元", "12800.00"),
            ("预算3.5万元", "35000.00"),
            ("合同金额：人民币12.8万元（含税）", "128000.00"),
            ("￥3.5万", "35000.00"),
            ("总价：人民币 12,800.50 元", "12800.50"),
            ("大写：人民币壹拾贰万捌仟元整", "128000.00"),
            ("大写：叁仟伍佰元伍角", "3500.50"),
        ],
    )
    def test_each_way_of_writing_money_is_normalised_to_yuan(self, text, yuan):
        assert yuan in values(fx.amounts_extract(lines_of(text)))

    @pytest.mark.parametrize("text", ["参会 3万人", "第2026号", "2026年11月28日", "共 12 页"])
    def test_a_number_without_currency_is_not_an_amount(self, text):
        assert fx.amounts_extract(lines_of(text)) == []

    @given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999.99"), places=2))
    def test_any_yuan_amount_written_with_thousands_separators_reads_back(self, amount):
        written = f"¥{amount:,.2f}"
        assert values(fx.amounts_extract(lines_of(written))) == [str(amount)]

    @given(st.integers(min_value=1, max_value=99_999_999))
    def test_capital_numerals_read_back_for_any_whole_amount(self, amount):
        assert fx.capital_amount(capital(amount) + "元整") == amount


def capital(n: int) -> str:
    """A whole amount in 人民币大写, the way a finance clerk writes it (the test's own writer)."""
    digits, units = "零壹贰叁肆伍陆柒捌玖", ["", "拾", "佰", "仟"]

    def section(v: int) -> str:
        out, zero = "", False
        for power in (3, 2, 1, 0):
            d = v // 10**power % 10
            if d:
                if zero and out:
                    out += "零"
                out += digits[d] + units[power]
                zero = False
            else:
                zero = True
        return out

    high, low = divmod(n, 10_000)
    if not high:
        return section(low)
    return section(high) + "万" + (("零" if low < 1000 else "") + section(low) if low else "")


class TestDates:
    @pytest.mark.parametrize(
        "text",
        ["签订日期：2026年11月28日", "2026-11-28", "日期 2026/11/28", "2026.11.28", "2026 年 11 月 28 日"],
    )
    def test_full_dates_in_each_format(self, text):
        assert values(fx.dates_extract(lines_of(text), reference=REFERENCE)) == ["2026-11-28"]

    def test_a_date_without_a_year_takes_the_nearest_year_to_the_reference_day(self):
        facts = fx.dates_extract(lines_of("时间：11月26日下午"), reference=REFERENCE)
        assert values(facts) == ["2026-11-26"] and facts[0].detail == {"year_inferred": True}
        january = fx.dates_extract(lines_of("12月30日 拜访"), reference=dt.date(2027, 1, 3))
        assert values(january) == ["2026-12-30"]

    def test_impossible_dates_are_not_facts(self):
        assert fx.dates_extract(lines_of("2026年2月30日", "13月5日"), reference=REFERENCE) == []

    @given(st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2099, 12, 31)))
    def test_any_date_written_in_chinese_reads_back(self, day):
        text = f"{day.year}年{day.month}月{day.day}日"
        assert values(fx.dates_extract(lines_of(text), reference=REFERENCE)) == [day.isoformat()]


class TestPhones:
    def test_mobile_and_landline_numbers_are_normalised_by_the_crm_rules(self):
        facts = fx.phones_extract(lines_of("手机：139 0571 2345", "电话：0571-8765 4321"))
        assert values(facts) == ["+8613905712345", "+8657187654321"]
        assert [f.detail["phone_kind"] for f in facts] == ["mobile", "landline"]

    def test_dates_and_amounts_are_not_read_as_phone_numbers(self):
        assert fx.phones_extract(lines_of("2026-11-28 签订", "金额 12800000元", "订单号 20261128")) == []


class TestSignatureCues:
    def test_a_filled_signature_line_and_date_are_cues(self):
        lines = lines_of("授权代表签字：王建国", "日期：2026年11月20日")
        cues = fx.sign_cues(lines, fx.dates_extract(lines, reference=REFERENCE))
        assert (cues.cue_lines, cues.filled_lines, cues.date_filled, cues.date_blank) == (
            [0],
            [0],
            True,
            False,
        )

    def test_a_blank_signature_line_and_a_blank_date_are_not(self):
        lines = lines_of("甲方（盖章）：杭州星河新能源科技有限公司", "授权代表签字：", "日期：年月日")
        cues = fx.sign_cues(lines, fx.dates_extract(lines, reference=REFERENCE))
        # the printed party name after 盖章 is not a signature: the seal is judged on the image
        assert (cues.filled_lines, cues.date_filled, cues.date_blank) == ([], False, True)

    def test_a_signature_written_beside_the_label_on_the_same_row_counts(self):
        label = OcrLine("签字：", [[100, 100], [200, 100], [200, 140], [100, 140]], 0.99)
        name = OcrLine("王建国", [[260, 95], [400, 95], [400, 145], [260, 145]], 0.7)
        assert fx.sign_cues([label, name], []).filled_lines == [0]

    def test_a_sentence_mentioning_signing_is_not_a_signature(self):
        cues = fx.sign_cues(lines_of("本合同自双方签字盖章之日起生效，说明：双方签字后生效"), [])
        assert cues.is_signature_page and cues.filled_lines == []


class TestRedSeal:
    def page(self) -> Image.Image:
        page = Image.new("RGB", (1240, 1754), "white")
        ImageDraw.Draw(page).text((100, 100), "合同", fill="black")
        return page

    def test_a_drawn_seal_is_found_round_and_located(self):
        page = self.page()
        seal_draw(page, (900, 700), "杭州星河新能源科技有限公司")
        seal = red_seal_find(page)
        assert seal["found"]
        x0, y0, x1, y1 = seal["blob"]["box"]
        assert abs((x0 + x1) / 2 - 900) < 20 and abs((y0 + y1) / 2 - 700) < 20
        assert 0.85 < seal["blob"]["aspect"] < 1.15

    @pytest.mark.parametrize(
        "draw",
        [
            lambda d: None,  # a plain page
            lambda d: d.rectangle((100, 300, 700, 420), fill=(214, 30, 36)),  # a solid red banner
            lambda d: d.rectangle((200, 600, 500, 900), outline=(214, 30, 36), width=8),  # a red box
            lambda d: d.ellipse((700, 600, 940, 840), outline=(240, 150, 160), width=9),  # a pink ring
            lambda d: d.ellipse((700, 600, 720, 620), outline=(214, 30, 36), width=3),  # a red dot
        ],
    )
    def test_red_that_is_not_a_round_seal_is_not_a_seal(self, draw):
        page = self.page()
        draw(ImageDraw.Draw(page))
        assert red_seal_find(page)["found"] is False


def test_search_normalisation_ignores_width_case_and_spaces():
    assert search_normalise("手机：139 0571 2345 ＡＢＣ") == search_normalise("手机:13905712345abc")
