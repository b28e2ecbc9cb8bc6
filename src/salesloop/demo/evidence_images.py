"""Generated evidence images (issue 6 items 3, 5, 6): a contract's signature page (with or without a
red seal and a signature), meeting minutes, and a phone photo of a page on a desk — rendered with
Pillow and a CJK font, deterministic for given arguments. Tests read them back with OCR; the OCR
benchmark measures throughput on them.

The font is Debian's `fonts-noto-cjk` (`make test` installs it when missing).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

FONT_DIRS = (Path("/usr/share/fonts/opentype/noto"), Path("/usr/share/fonts/noto-cjk"))
A4_150DPI = (1240, 1754)
SEAL_RED = (214, 30, 36)
INK = (25, 25, 25)


class FontMissing(RuntimeError):
    pass


def cjk_font(size: int, *, bold: bool = False) -> ImageFont.FreeTypeFont:
    name = "NotoSansCJK-Bold.ttc" if bold else "NotoSansCJK-Regular.ttc"
    for folder in FONT_DIRS:
        if (folder / name).exists():
            return ImageFont.truetype(str(folder / name), size, index=2)  # index 2: Simplified Chinese
    raise FontMissing(f"{name} not found: install the Debian package fonts-noto-cjk")


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", optimize=False)
    return out.getvalue()


def _jpeg(image: Image.Image, quality: int = 88) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def seal_draw(page: Image.Image, centre: tuple[int, int], company: str, radius: int = 115) -> None:
    """A red company seal: a ring, a star, the name around the top arc; multiplied onto the page
    like ink, so the text under it stays visible."""
    layer = Image.new("RGB", page.size, (255, 255, 255))
    draw = ImageDraw.Draw(layer)
    cx, cy = centre
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), outline=SEAL_RED, width=9)
    star = [
        (
            cx + (34 if i % 2 == 0 else 14) * math.sin(math.pi * i / 5),
            cy - (34 if i % 2 == 0 else 14) * math.cos(math.pi * i / 5),
        )
        for i in range(10)
    ]
    draw.polygon(star, fill=SEAL_RED)
    font = cjk_font(30, bold=True)
    chars = list(company)
    span = min(250.0, 22.0 * len(chars))
    for i, char in enumerate(chars):
        angle = -span / 2 + span * (i + 0.5) / len(chars)  # degrees from the top, clockwise
        glyph = Image.new("L", (40, 40), 0)
        ImageDraw.Draw(glyph).text((5, 0), char, font=font, fill=255)
        glyph = glyph.rotate(-angle, resample=Image.Resampling.BICUBIC)
        r = radius - 32
        gx = cx + r * math.sin(math.radians(angle)) - 20
        gy = cy - r * math.cos(math.radians(angle)) - 20
        layer.paste(Image.new("RGB", glyph.size, SEAL_RED), (round(gx), round(gy)), glyph)
    page.paste(ImageChops.multiply(page, layer))


def signature_page(
    *,
    customer: str = "杭州星河新能源科技有限公司",
    supplier: str = "上海云启软件有限公司",
    amount: str = "12.8万元",
    signed_on: str = "2026年11月20日",
    phone: str = "0571-8765 4321",
    signer: str = "王建国",
    seal: bool = True,
    fmt: str = "PNG",
) -> bytes:
    """The last page of a contract: the amount, then both parties with 签字 / 盖章 / 日期 lines.
    Unsigned: blank lines and 「日期：    年  月  日」, no seal."""
    page = Image.new("RGB", A4_150DPI, (255, 255, 255))
    draw = ImageDraw.Draw(page)
    title, body = cjk_font(46, bold=True), cjk_font(34)
    draw.text((470, 120), "合同签署页", font=title, fill=INK)
    rows = [
        f"合同金额：人民币{amount}（含税）",
        "本合同一式两份，甲乙双方各执一份，自双方签字盖章之日起生效。",
        f"联系电话：{phone}",
    ]
    for i, text in enumerate(rows):
        draw.text((120, 260 + 70 * i), text, font=body, fill=INK)
    signed = bool(signer)
    top = 620
    draw.text((120, top), f"甲方（盖章）：{customer}", font=body, fill=INK)
    draw.text((120, top + 90), f"授权代表签字：{signer if signed else ''}", font=body, fill=INK)
    draw.line((360, top + 135, 700, top + 135), fill=INK, width=2)
    draw.text(
        (120, top + 180), f"日期：{signed_on if signed else '      年    月    日'}", font=body, fill=INK
    )
    top2 = 1000
    draw.text((120, top2), f"乙方（盖章）：{supplier}", font=body, fill=INK)
    draw.text((120, top2 + 90), f"授权代表签字：{'李明' if signed else ''}", font=body, fill=INK)
    draw.line((360, top2 + 135, 700, top2 + 135), fill=INK, width=2)
    draw.text(
        (120, top2 + 180), f"日期：{signed_on if signed else '      年    月    日'}", font=body, fill=INK
    )
    if seal:
        seal_draw(page, (900, top + 110), customer)
    return _jpeg(page) if fmt == "JPEG" else _png(page)


def minutes_page(
    *,
    customer: str = "杭州星河新能源科技有限公司",
    held_on: str = "11月26日",
    budget: str = "¥12,800",
    phone: str = "139 0571 2345",
) -> bytes:
    """Meeting minutes (会议纪要): who, when, what was agreed, the budget and a follow-up number."""
    page = Image.new("RGB", (1240, 1000), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    title, body = cjk_font(44, bold=True), cjk_font(32)
    draw.text((500, 80), "会议纪要", font=title, fill=INK)
    rows = [
        f"客户：{customer}",
        f"时间：{held_on} 下午两点",
        "议题：CRM 系统方案演示与报价确认",
        f"结论：客户确认首期预算{budget}，下周提交正式报价",
        f"客户联系人：王建国 手机：{phone}",
    ]
    for i, text in enumerate(rows):
        draw.text((100, 220 + 80 * i), text, font=body, fill=INK)
    return _png(page)


def page_photo(page_bytes: bytes, *, width: int = 1280, angle: float = 2.5) -> bytes:
    """A phone photo of a printed page: tilted, on a desk, slightly soft, JPEG, `width` px wide."""
    with Image.open(io.BytesIO(page_bytes)) as opened:
        page = opened.convert("RGB")
    scale = (width * 0.8) / page.width
    page = page.resize((round(page.width * scale), round(page.height * scale)), Image.Resampling.LANCZOS)
    rotated = page.rotate(angle, expand=True, fillcolor=(120, 104, 90), resample=Image.Resampling.BICUBIC)
    height = round(rotated.height * 1.1)
    desk = Image.new("RGB", (width, height), (120, 104, 90))
    desk.paste(rotated, ((width - rotated.width) // 2, (height - rotated.height) // 2))
    return _jpeg(desk.filter(ImageFilter.GaussianBlur(0.6)), quality=85)


def scanned_pdf(pages: list[bytes], *, resolution: float = 150.0) -> bytes:
    """A PDF as a scanner makes it: each page one JPEG image (Pillow writes DCTDecode streams)."""
    images = []
    for page in pages:
        with Image.open(io.BytesIO(page)) as opened:
            images.append(opened.convert("RGB"))
    out = io.BytesIO()
    images[0].save(out, "PDF", resolution=resolution, save_all=True, append_images=images[1:])
    return out.getvalue()
