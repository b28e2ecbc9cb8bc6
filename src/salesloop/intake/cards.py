"""C1.1 展会名片: a photo of a trade-show business card becomes a draft that a person confirms.

upload (signed hook, page or API) → the photo is stored content-addressed and its raw event, status
`draft`, points at it → `card_ocr` (a background task) reads the text and proposes the fields → a
person confirms or corrects them → a second event carrying the confirmed item takes the normal
intake path (dedup, 回流, lead creation) and the draft is linked to its lead.

OCR proposes, a person decides: a misread digit must never create a lead, or a touch on somebody
else's lead, by itself. The raw event is never edited; what OCR read and what the person confirmed
live beside it in `event.normalised`, so either can be checked against the photo later.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import secrets
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from PIL import Image, UnidentifiedImageError

from salesloop.core import clock
from salesloop.core.audit import audit_record
from salesloop.core.ocr import OcrLine, OcrUnreadable, image_open_upright, ocr_engine_version, ocr_image_read
from salesloop.core.roles import Role, is_admin
from salesloop.crm.phones import PhoneError, phone_parse
from salesloop.crm.selectors import Page, keyset_page
from salesloop.intake.hooks import _signed, client_ip, error, kept_headers
from salesloop.intake.models import EventStatus, InboundEvent, Source, SourceKind
from salesloop.intake.services import event_receive, outcome_of, source_create

log = logging.getLogger(__name__)

CARD_DIR = "cards"  # under MEDIA_ROOT; the images are served only through scope-checked views
CONFIRMED_SUFFIX = ":confirmed"  # external id of the event that carries a person's confirmation
DEFAULT_SOURCE_NAME = "展会名片"
DEFAULT_SOURCE_SLUG = "cards"
CARD_MAX_BYTES = 10 * 1024 * 1024  # a 12-megapixel phone photo is 3–6 MB
CARD_MAX_PIXELS = 50_000_000
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}  # Pillow format → MIME
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
UNLABELLED = {"", "application/octet-stream"}  # some apps send file parts without a type


# ---- the photo ------------------------------------------------------------------------------


class CardImageRefused(ValueError):
    """An upload that cannot be a card photo; `status` is the HTTP answer, the message says why."""

    status = 422


class CardTypeRefused(CardImageRefused):
    status = 415


class CardTooLarge(CardImageRefused):
    status = 413


@dataclass(frozen=True)
class CardImage:
    content_type: str
    extension: str
    width: int
    height: int


def card_image_check(image_bytes: bytes, declared_type: str) -> CardImage:
    """The photo's real type comes from its bytes (Pillow), not from what the sender declared; a
    declared type other than the three we read is refused before the bytes are even parsed."""
    declared = declared_type.split(";")[0].strip().lower()
    if declared not in EXTENSIONS and declared not in UNLABELLED:
        raise CardTypeRefused(f"send a JPEG, PNG or WebP photo, not {declared}")
    if not image_bytes:
        raise CardImageRefused("the photo is empty")
    if len(image_bytes) > CARD_MAX_BYTES:
        raise CardTooLarge(f"the photo is larger than {CARD_MAX_BYTES // (1024 * 1024)} MB")
    try:
        with Image.open(io.BytesIO(image_bytes)) as probe:
            image_format, (width, height) = probe.format, probe.size
            if image_format not in CONTENT_TYPES:
                raise CardTypeRefused(
                    f"a {image_format} image is not read here; send a JPEG, PNG or WebP photo"
                )
            if width * height > CARD_MAX_PIXELS:
                raise CardImageRefused(f"the photo has {width}×{height} pixels; at most 50 megapixels")
            probe.verify()
        with Image.open(io.BytesIO(image_bytes)) as full:
            full.load()  # verify() does not decode JPEG data: a truncated photo fails only here
    except CardImageRefused:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise CardImageRefused(f"not a readable image: {exc}") from exc
    content_type = CONTENT_TYPES[image_format]
    return CardImage(content_type, EXTENSIONS[content_type], width, height)


def _image_store(path: str, image_bytes: bytes) -> None:
    """Content-addressed: the same photo is one file, however often it is uploaded."""
    if default_storage.exists(path):
        return
    saved = default_storage.save(path, ContentFile(image_bytes))
    if saved != path:  # a concurrent upload of the same photo stored it first; keep one copy
        default_storage.delete(saved)


def card_image_path(event: InboundEvent) -> tuple[str, str]:
    """(storage path, content type) of a card event's photo, from its raw body."""
    try:
        item = json.loads(event.body)
        return str(item["file"]), str(item["content_type"])
    except (ValueError, KeyError, TypeError) as exc:
        raise Http404("this event carries no card photo") from exc


def card_image_response(event: InboundEvent) -> FileResponse:
    """The photo for a user already checked against the card's scope (never a public media URL)."""
    path, content_type = card_image_path(event)
    try:
        handle = default_storage.open(path, "rb")
    except FileNotFoundError as exc:
        raise Http404("the card photo is missing") from exc
    extension = EXTENSIONS.get(content_type, "bin")
    response = FileResponse(handle, content_type=content_type, filename=f"card-{event.pk}.{extension}")
    response["Cache-Control"] = "private, max-age=3600"  # personal data: no shared caches
    return response


def card_image_bytes(event: InboundEvent) -> bytes:
    path, _ = card_image_path(event)
    with default_storage.open(path, "rb") as stored:
        return stored.read()


# ---- upload ---------------------------------------------------------------------------------


def card_source_default() -> Source:
    """The card source an upload without a choice goes to: the first enabled one, or a new
    「展会名片」 source (its secret is generated, so the hook works for a scanner app later)."""
    source = Source.objects.filter(kind=SourceKind.CARD, enabled=True).order_by("id").first()
    if source is not None:
        return source
    slug = None if Source.objects.filter(slug=DEFAULT_SOURCE_SLUG).exists() else DEFAULT_SOURCE_SLUG
    try:
        with transaction.atomic():
            return source_create(
                actor=None,
                kind=SourceKind.CARD,
                name=DEFAULT_SOURCE_NAME,
                secret=secrets.token_urlsafe(32),
                slug=slug,
            )
    except (ValidationError, IntegrityError):
        # Another first upload created it a moment ago.
        source = Source.objects.filter(kind=SourceKind.CARD, enabled=True).order_by("id").first()
        if source is None:
            raise
        return source


def card_sources() -> QuerySet[Source]:
    """Card sources anyone who uploads may choose from, e.g. one per trade show."""
    return Source.objects.filter(kind=SourceKind.CARD, enabled=True).order_by("id")


def card_upload(
    *,
    actor: Any,
    source: Source,
    image_bytes: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
    remote_addr: str | None = None,
) -> InboundEvent:
    """C1.1: store the photo and its raw event (draft), and ask for OCR — once per photo and source:
    a re-upload of the same photo answers with the first event and changes nothing."""
    from salesloop.intake.tasks import card_ocr  # the task module imports this one

    if source.kind != SourceKind.CARD:
        raise ValidationError({"source_id": "not a trade-show card source"})
    if not source.enabled:
        raise ValidationError({"source_id": "this source is disabled"})
    image = card_image_check(image_bytes, content_type)
    sha = hashlib.sha256(image_bytes).hexdigest()
    path = f"{CARD_DIR}/{sha}.{image.extension}"
    _image_store(path, image_bytes)
    body = {"card_id": sha, "file": path, "content_type": image.content_type, "bytes": len(image_bytes)}
    with transaction.atomic():
        outcome = event_receive(
            source=source,
            body=json.dumps(body),
            external_id=sha,
            headers=headers,
            remote_addr=remote_addr,
            created_by=actor,
            process=False,
        )
        # Only the request that created the event moves it to draft and asks for OCR. The task is
        # enqueued in this transaction: with the database queue it commits with the event or not at all.
        fresh = InboundEvent.objects.filter(pk=outcome.event_id, status=EventStatus.RECEIVED).update(
            status=EventStatus.DRAFT
        )
        if fresh:
            card_ocr.enqueue(outcome.event_id)
    return InboundEvent.objects.select_related("source", "created_by").get(pk=outcome.event_id)


# ---- reads ----------------------------------------------------------------------------------


def cards_visible_to(user: Any) -> QuerySet[InboundEvent]:
    """A card is personal data one person collected, and its photo cannot be masked: a rep sees the
    cards they uploaded; a manager those uploaded by people of their region and those a scanner
    delivered (no uploader); directors and admins all. Product managers review cases, not contacts:
    none. Confirmation events are not cards; they are not listed."""
    cards = InboundEvent.objects.filter(source__kind=SourceKind.CARD).exclude(
        external_id__endswith=CONFIRMED_SUFFIX
    )
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return cards.none()
    if is_admin(user) or user.role == Role.DIRECTOR:
        return cards
    if user.role == Role.MANAGER:
        scope = Q(created_by=user) | Q(created_by__isnull=True)
        if user.region_id:
            scope |= Q(created_by__region_id=user.region_id)
        return cards.filter(scope)
    if user.role == Role.REP:
        return cards.filter(created_by=user)
    return cards.none()


def card_list(*, user: Any, status: str | None, cursor: str | None, limit: int) -> Page:
    cards = cards_visible_to(user).select_related("source", "created_by")
    if status:
        cards = cards.filter(status=status)
    return keyset_page(cards, cursor=cursor, limit=limit)


def card_get(*, user: Any, event_id: int) -> InboundEvent:
    """The card, or 404 when it does not exist or is out of the user's scope — never a leak."""
    event = cards_visible_to(user).select_related("source", "created_by").filter(pk=event_id).first()
    if event is None:
        raise Http404("card not found")
    return event


def card_ocr_pending(event: InboundEvent) -> bool:
    return event.status == EventStatus.DRAFT and "ocr_lines" not in (event.normalised or {})


# ---- OCR ------------------------------------------------------------------------------------


class CardOcrError(Exception):
    """The photo could not be read; the message is the reason kept on the event."""


def card_text_read(image_bytes: bytes) -> list[OcrLine]:
    """The text lines on a photo, top to bottom, read by the shared engine (`core.ocr`)."""
    try:
        upright = image_open_upright(image_bytes)
    except OcrUnreadable as exc:
        raise CardOcrError(f"the stored photo cannot be opened: {exc.__cause__ or exc}") from exc
    return ocr_image_read(upright)


def card_read(*, event_id: int) -> InboundEvent:
    """Run OCR on a draft card and keep what it read beside the raw event. Idempotent: a card that
    was read, confirmed or failed is left alone. The slow part runs outside any transaction."""
    event = InboundEvent.objects.select_related("source").get(pk=event_id)
    if not card_ocr_pending(event):
        return event
    started = time.monotonic()
    lines: list[OcrLine] = []
    reason = ""
    try:
        lines = card_text_read(card_image_bytes(event))
    except CardOcrError as exc:
        reason = str(exc)
    except Http404:
        reason = "the event names no stored photo"
    except FileNotFoundError:
        reason = "the stored photo is missing"
    except Exception as exc:  # the engine's own failures (onnxruntime, OpenCV) vary; keep the reason
        log.exception("OCR of card event %s failed", event_id)
        reason = f"OCR failed: {exc.__class__.__name__}: {exc}"
    if not reason and not lines:
        reason = "no text found on the photo; take it again, flat, close and in focus"
    seconds = round(time.monotonic() - started, 2)
    with transaction.atomic():
        event = InboundEvent.objects.select_for_update().get(pk=event_id)
        if not card_ocr_pending(event):  # confirmed by hand meanwhile, or read by another worker
            return event
        event.attempts += 1
        event.processed_at = clock.now()
        if reason:
            event.status, event.error = EventStatus.FAILED, reason
            event.normalised = {"ocr_lines": [], "ocr": {"seconds": seconds}}
        else:
            draft = card_fields_extract(lines)
            event.error = ""
            event.normalised = {
                "ocr_lines": [line.as_json() for line in lines],
                "draft": draft.fields(),
                "why": draft.why,
                "phones": draft.phones,
                "ocr": {"engine": ocr_engine_version(), "seconds": seconds},
            }
        event.save(update_fields=["status", "error", "normalised", "attempts", "processed_at"])
    return event


# ---- reading a card -------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


HAN = r"\u3400-\u4dbf\u4e00-\u9fff"
COMPANY_STRONG = _words("公司 集团 研究院 研究所 事务所 银行 医院 大学 学院 协会 有限")
COMPANY_WEAK = _words("科技 工厂 商行 中心 实业 制造 股份 工作室 厂")
COMPANY_LATIN = re.compile(
    r"\b(co\.?|ltd\.?|limited|inc\.?|corp\.?|corporation|group|company|llc|gmbh)\b", re.I
)
TITLE_ROLES = _words(
    "总经理 经理 总监 主管 工程师 总裁 董事长 董事 主任 部长 科长 处长 厂长 院长 所长 秘书长 顾问 专员 代表 "
    "助理 合伙人 创始人 负责人 架构师 设计师 会计师 律师 教授 研究员 主席 总工 店长 组长 销售 采购"
)
TITLE_LATIN = re.compile(
    r"\b(ceo|cto|cfo|coo|cmo|cio|vp|director|manager|engineer|president|sales|founder|partner|consultant)\b",
    re.I,
)
# Words that open a title ("高级工程师"), never a name, though 高 is also a surname.
TITLE_PREFIXES = _words(
    "高级 资深 首席 副 执行 区域 大区 客户 大客户 市场 技术 项目 产品 业务 商务 渠道 运营 行政 人事 "
    "财务 研发 采购 销售 总"
)
NOT_NAMES = _words("名片 地址 电话 手机 邮箱 微信 传真 网址 欢迎 中国 总部 分公司")
SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
    "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫"
    "孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童"
    "凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连"
    "芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖"
    "巩明佘池查麻苑迟邝"
)
COMPOUND_SURNAMES = _words("欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 令狐 夏侯")

# "手机：", "Tel:", "M ", "E-mail：" … at the start of a line: what kind of value follows.
LABELS: tuple[tuple[str, str], ...] = (
    ("mobile", r"手机|移动电话|mobile|mob|cell|m"),
    ("fax", r"传真|fax|f"),
    ("phone", r"电话|座机|办公电话|tel|phone|t"),
    ("email", r"邮箱|电子邮箱|电子邮件|e-?mail|邮件|e"),
    ("address", r"公司地址|地址|厂址|address|addr|add"),
    ("web", r"网址|网站|web|website|www"),
    ("wechat", r"微信|wechat|qq"),
    ("name", r"姓名|name"),
    ("company", r"公司名称|公司|单位|company"),
    ("title", r"职务|职位|title"),
)
LABEL_RE = re.compile(
    r"^\s*(?:"
    + "|".join(f"(?P<{kind}>{pattern})" for kind, pattern in LABELS)
    + r")\s*(?::|\s)\s*(?P<value>.+)$",
    re.I,
)
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE_RUN_RE = re.compile(r"[+(]?\d[\d\s()\-.]{5,}\d")
CITY_RE = re.compile(rf"(?:[{HAN}]{{2,7}}?(?:省|自治区))?(?P<city>[{HAN}]{{2,4}}?)市")
ADDRESS_HINTS = _words("路 街 道 号 大厦 广场 园区 楼 室 座 层")


@dataclass
class CardDraft:
    """What OCR proposes for a card, with the reason behind each proposal (DESIGN.md: explained)."""

    name: str = ""
    company: str = ""
    title: str = ""
    phone: str = ""
    email: str = ""
    address: str = ""
    city: str = ""
    province: str = ""
    phones: list[dict[str, str]] = field(default_factory=list)
    why: dict[str, str] = field(default_factory=dict)

    def fields(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if k not in {"phones", "why"}}


@dataclass
class _Line:
    text: str  # NFKC: full-width colons, digits and letters made plain
    height: float
    label: str  # the kind of a leading label, or ""
    value: str  # the text after the label


def _line(ocr: OcrLine) -> _Line:
    text = unicodedata.normalize("NFKC", ocr.text).strip()
    text = re.sub(rf"^([{HAN}])\s+([{HAN}])\s*:", r"\1\2:", text)  # "地 址：" spaced out to fill the width
    match = LABEL_RE.match(text)
    if match:
        kind = next(k for k, _ in LABELS if match.group(k))
        # A one-letter label ("M 139…", "E wang@…") counts only before a value of its own kind.
        value = match.group("value").strip()
        if len(match.group(kind)) > 1 or _value_fits(kind, value):
            return _Line(text, ocr.height, kind, value)
    return _Line(text, ocr.height, "", text)


def _value_fits(kind: str, value: str) -> bool:
    if kind in {"mobile", "phone", "fax"}:
        return sum(ch.isdigit() for ch in value) >= 7
    if kind == "email":
        return "@" in value
    return False


def _han_only(text: str) -> str:
    return re.sub(r"[\s·•・]", "", text)


def _is_company(text: str) -> int:
    """0 when the text is no company; otherwise how sure (2 strong word, 1 weak word or Latin form)."""
    if any(word in text for word in COMPANY_STRONG):
        return 2
    if any(word in text for word in COMPANY_WEAK) or COMPANY_LATIN.search(text):
        return 1
    return 0


def _has_role(text: str) -> bool:
    return any(word in text for word in TITLE_ROLES) or bool(TITLE_LATIN.search(text))


def _name_like(text: str) -> bool:
    compact = _han_only(text)
    return (
        bool(re.fullmatch(rf"[{HAN}]{{2,4}}", compact))
        and not _is_company(compact)
        and not _has_role(compact)
        and not any(word in compact for word in NOT_NAMES)
    )


def _has_surname(text: str) -> bool:
    compact = _han_only(text)
    return compact[:1] in SURNAMES or compact[:2] in COMPOUND_SURNAMES


def _name_and_title_split(text: str) -> tuple[str, str] | None:
    """ "王建国 销售总监" or "王建国销售总监" on one line: (name, title), or None."""
    parts = re.split(r"\s+|[|｜/丨]", text.strip(), maxsplit=1)
    if len(parts) == 2 and _name_like(parts[0]) and _has_role(parts[1]):
        return _han_only(parts[0]), parts[1].strip(" |｜/丨")
    compact = _han_only(text)
    starts = [compact.find(word) for word in (*TITLE_ROLES, *TITLE_PREFIXES) if word in compact]
    cut = min((s for s in starts if s > 0), default=-1)
    if 2 <= cut <= 4 and _has_role(compact[cut:]) and _has_surname(compact[:cut]):
        name = compact[:cut]
        if _name_like(name) and not name.startswith(TITLE_PREFIXES):
            return name, compact[cut:]
    return None


def _phones(lines: list[_Line]) -> list[dict[str, str]]:
    """Every number on the card that is a real phone number (fax excluded), in card order."""
    found: list[dict[str, str]] = []
    for line in lines:
        if line.label in {"fax", "email", "web", "wechat"} or "@" in line.value:
            continue
        value = line.value
        if line.label in {"mobile", "phone"}:  # OCR reads O for 0 and l for 1 in a number it knows
            value = value.translate(str.maketrans("OoDlI|", "000111"))
        for run in PHONE_RUN_RE.findall(value):
            info = _phone_from_run(run)
            if info is not None and all(p["e164"] != info.e164 for p in found):
                found.append({"e164": info.e164, "kind": info.kind, "text": run.strip(), "label": line.label})
    return found


def _phone_from_run(run: str) -> Any:
    digits = "".join(ch for ch in run if ch.isdigit())
    attempts = [run, digits]
    if digits.startswith("1"):
        attempts.append(digits[:11])
    elif digits.startswith("0"):  # an extension after the number: "0571-87654321-801"
        attempts += [digits[:12], digits[:11], digits[:10]]
    for attempt in attempts:
        try:
            return phone_parse(attempt)
        except PhoneError:
            continue
    return None


def _email(lines: list[_Line]) -> str:
    for line in sorted(lines, key=lambda ln: ln.label != "email"):
        compact = re.sub(r"\s*([@.])\s*", r"\1", line.value)
        for candidate in EMAIL_RE.findall(compact):
            try:
                validate_email(candidate.lower())
            except ValidationError:
                continue
            return candidate.lower()
    return ""


def card_fields_extract(ocr_lines: list[OcrLine]) -> CardDraft:
    """Chinese business-card heuristics: the company line has 公司/集团/有限/研究院…; the title line
    经理/总监/工程师/销售…; the name is a 2–4 Han-character line with neither, usually the largest
    text on the card and opening with a common surname; the phone is a mobile if there is one."""
    draft = CardDraft()
    lines = [_line(ocr) for ocr in ocr_lines if ocr.text.strip()]
    if not lines:
        return draft
    tallest = max(line.height for line in lines) or 1.0
    contact_labels = {"mobile", "phone", "fax", "email", "address", "web", "wechat"}

    # company: labelled, or the surest company-like line (Chinese before Latin, then the tallest)
    labelled = [ln for ln in lines if ln.label == "company" and _is_company(ln.value)]
    companies = labelled or [
        ln
        for ln in lines
        if not ln.label and _is_company(ln.value) and "@" not in ln.value and not _is_title_line(ln)
    ]
    if companies:
        best = max(
            companies,
            key=lambda ln: (_is_company(ln.value), bool(re.search(f"[{HAN}]", ln.value)), ln.height),
        )
        draft.company = best.value.strip()
        draft.why["company"] = f"the line names an organisation ({_company_word(best.value)})"

    # name and title: labelled, split from one line, or found on lines of their own
    for ln in lines:
        if ln.label == "name" and _name_like(ln.value):
            draft.name, draft.why["name"] = _han_only(ln.value), "labelled 姓名"
        if ln.label == "title" and ln.value:
            draft.title, draft.why["title"] = ln.value, "labelled 职务"
    free = [ln for ln in lines if not ln.label and ln.value != draft.company]
    if not draft.name:
        names = [ln for ln in free if _name_like(ln.value)]
        if names:
            best = max(names, key=lambda ln: ln.height / tallest + (0.5 if _has_surname(ln.value) else 0))
            draft.name = _han_only(best.value)
            draft.why["name"] = (
                f"a {len(draft.name)}-character name line, text height {round(best.height)} px "
                f"(tallest {round(tallest)} px){', common surname' if _has_surname(best.value) else ''}"
            )
        else:
            for ln in free:
                split = _name_and_title_split(ln.value)
                if split:
                    draft.name, split_title = split
                    draft.why["name"] = "the name before the title on one line"
                    draft.title = draft.title or split_title
                    draft.why.setdefault("title", "the title after the name on one line")
                    break
    if not draft.title:
        titles = [
            ln for ln in free if _has_role(ln.value) and not _is_company(ln.value) and len(ln.value) <= 30
        ]
        for ln in titles:
            split = _name_and_title_split(ln.value)
            draft.title = split[1] if split and split[0] == draft.name else ln.value
            draft.why["title"] = "the line names a role (经理/总监/工程师/销售…)"
            break

    # phone: a mobile first (it reaches the person), then a labelled landline, then any number
    draft.phones = _phones([ln for ln in lines if ln.label in contact_labels or not ln.label])
    mobiles = [p for p in draft.phones if p["kind"] == "mobile"]
    landlines = [p for p in draft.phones if p["kind"] == "landline"]
    chosen = (mobiles or landlines or [None])[0]
    if chosen is not None:
        draft.phone = chosen["e164"]
        draft.why["phone"] = f"{chosen['kind']} number read from “{chosen['text']}”" + (
            f"; {len(draft.phones) - 1} other number(s) on the card" if len(draft.phones) > 1 else ""
        )
        if chosen["kind"] == "mobile":
            info = phone_parse(chosen["e164"])
            draft.province, draft.city = info.province or "", info.city or ""

    draft.email = _email(lines)
    if draft.email:
        draft.why["email"] = "the first e-mail address on the card"

    addresses = [ln for ln in lines if ln.label == "address"] or [
        ln
        for ln in lines
        if not ln.label
        and not _is_company(ln.value)
        and re.search(r"[省市区县]", ln.value)
        and any(hint in ln.value for hint in ADDRESS_HINTS)
    ]
    if addresses:
        draft.address = (
            re.sub(r"\s+", "", addresses[0].value) if re.search(f"[{HAN}]", addresses[0].value) else ""
        )
        draft.address = draft.address or addresses[0].value
        draft.why["address"] = "labelled 地址" if addresses[0].label else "the line reads like an address"
        city = CITY_RE.search(draft.address)
        if city:
            draft.city = city.group("city")
            draft.why["city"] = "from the address"
    if draft.city and "city" not in draft.why:
        draft.why["city"] = "from the mobile number's home location"
    return draft


def _is_title_line(line: _Line) -> bool:
    """ "技术中心主任" names a role at a department, not an organisation; "…有限公司" always is one."""
    return _has_role(line.value) and _is_company(line.value) < 2


def _company_word(text: str) -> str:
    for word in (*COMPANY_STRONG, *COMPANY_WEAK):
        if word in text:
            return word
    match = COMPANY_LATIN.search(text)
    return match.group(0) if match else text


# ---- confirmation ---------------------------------------------------------------------------


def card_may_confirm(*, user: Any, event: InboundEvent) -> bool:
    """Whoever may see a card may confirm it: a rep their own, a manager their region's, directors
    and admins any."""
    return cards_visible_to(user).filter(pk=event.pk).exists()


def _confirmed_clean(
    *, name: str, company: str, title: str, phone: str, email: str, address: str
) -> dict[str, str]:
    errors: dict[str, str] = {}
    cleaned = {
        "name": (name or "").strip(),
        "company": (company or "").strip(),
        "title": (title or "").strip(),
        "phone": "",
        "email": (email or "").strip().lower(),
        "address": (address or "").strip(),
    }
    for key, limit in (("name", 80), ("company", 200), ("title", 80), ("address", 200)):
        if len(cleaned[key]) > limit:
            errors[key] = f"at most {limit} characters"
        if "\x00" in cleaned[key]:
            errors[key] = "must not contain NUL characters"
    if not cleaned["name"]:
        errors["name"] = "the person's name is required"
    if (phone or "").strip():
        try:
            cleaned["phone"] = phone_parse(phone).e164
        except PhoneError as exc:
            errors["phone"] = str(exc)
    if cleaned["email"]:
        try:
            validate_email(cleaned["email"])
        except ValidationError:
            errors["email"] = "not an e-mail address"
    if not cleaned["phone"] and not cleaned["email"] and "phone" not in errors:
        errors["phone"] = "a phone number or an e-mail address is required to reach the person"
    if errors:
        raise ValidationError(errors)
    return cleaned


@transaction.atomic
def card_confirm(
    *,
    actor: Any,
    event: InboundEvent,
    name: str,
    company: str,
    title: str,
    phone: str,
    email: str,
    address: str = "",
) -> InboundEvent:
    """C1.1: a person confirms (or corrects) what OCR proposed; only then does the card become a
    lead — or a touch on the person's open lead (回流) — through the normal intake path.

    The raw card event is never edited: the confirmed fields travel in a second event on the same
    source (external id `<sha256>:confirmed`), and the draft keeps the link, ends `ignored` (it is
    not itself an arrival: the confirmation is, so counts are not doubled) and points at the lead.
    A confirmation that intake refuses rolls back entirely: the draft stays a draft to correct.
    """
    if not card_may_confirm(user=actor, event=event):
        raise PermissionDenied("you may confirm the cards you uploaded; managers those of their region")
    # Lock the card only: locking its source row too would hold up every upload to that source.
    event = InboundEvent.objects.select_for_update(of=("self",)).select_related("source").get(pk=event.pk)
    normalised = dict(event.normalised or {})
    if "confirmed_event_id" in normalised:
        raise ValidationError({"status": f"this card was confirmed already (lead #{event.lead_id})"})
    if event.status not in {EventStatus.DRAFT, EventStatus.FAILED}:
        raise ValidationError({"status": f"only draft cards are confirmed; this one is {event.status}"})
    confirmed = _confirmed_clean(
        name=name, company=company, title=title, phone=phone, email=email, address=address
    )
    city = CITY_RE.search(confirmed["address"])
    item = {
        "card_id": f"{event.external_id}{CONFIRMED_SUFFIX}",
        **confirmed,
        # Not read by the default card mapping (yet); kept in the item so a mapping can use them.
        "city": city.group("city") if city else "",
        "draft_event_id": event.pk,
    }
    outcome = event_receive(
        source=event.source,
        body=json.dumps(item, ensure_ascii=False),
        external_id=item["card_id"],
        created_by=actor,
    )
    if outcome.status == EventStatus.FAILED:
        raise ValidationError(f"intake refused the confirmed card: {outcome.error}")
    if outcome.lead_id is None:  # pragma: no cover - a processed event has a lead or failed
        raise ValidationError("intake produced no lead for the confirmed card")
    before = {"status": event.status, "lead": event.lead_id}
    draft = normalised.get("draft") or {}
    normalised["confirmed"] = {
        **confirmed,
        "by": actor.pk,
        "at": clock.now().isoformat(),
        "corrected": sorted(k for k, v in confirmed.items() if v != (draft.get(k) or "")),
    }
    normalised["confirmed_event_id"] = outcome.event_id
    event.normalised = normalised
    event.status, event.error, event.lead_id = EventStatus.IGNORED, "", outcome.lead_id
    event.processed_at = clock.now()
    event.save(update_fields=["normalised", "status", "error", "lead", "processed_at"])
    audit_record(
        actor=actor,
        action="card.confirm",
        target=event,
        before=before,
        after={
            "status": event.status,
            "lead": event.lead_id,
            "confirmed_event": outcome.event_id,
            "outcome": outcome.status,
            "corrected": normalised["confirmed"]["corrected"],
        },
    )
    return event


@transaction.atomic
def card_ocr_retry(*, actor: Any, event: InboundEvent) -> InboundEvent:
    """Read a card again: after OCR failed (a worker crash, a bad engine run) or when a draft has
    waited for OCR too long. The photo is the same; the raw event stays as it is."""
    from salesloop.intake.tasks import card_ocr

    if not card_may_confirm(user=actor, event=event):
        raise PermissionDenied("you may retry the cards you may confirm")
    event = InboundEvent.objects.select_for_update().get(pk=event.pk)
    if not (event.status == EventStatus.FAILED or card_ocr_pending(event)):
        raise ValidationError(
            {"status": f"only failed or unread cards are read again; this one is {event.status}"}
        )
    before = {"status": event.status, "error": event.error}
    event.status, event.error, event.normalised = EventStatus.DRAFT, "", None
    event.save(update_fields=["status", "error", "normalised"])
    audit_record(
        actor=actor, action="card.retry", target=event, before=before, after={"status": event.status}
    )
    card_ocr.enqueue(event.pk)
    event.refresh_from_db()
    return event


# ---- the hook -------------------------------------------------------------------------------


def card_receive(request: HttpRequest, source: Source, body: bytes) -> HttpResponse:
    """`POST /hooks/<slug>` of a card source (a scanner app, a badge reader): signed like the other
    channels, over the raw body as received — the photo itself (image/jpeg, image/png, image/webp)
    or multipart/form-data with a `photo` file. Answers 202 while the card is a draft."""
    refused = _signed(request, source, body)
    if refused is not None:
        return refused
    content_type = (request.content_type or "").lower()
    if content_type == "multipart/form-data":
        meta = {**request.META, "CONTENT_LENGTH": str(len(body))}
        try:
            _, files = MultiPartParser(
                meta, io.BytesIO(body), request.upload_handlers, request.encoding
            ).parse()
        except MultiPartParserError as exc:
            return error(400, f"the multipart body cannot be read: {exc}")
        photo = files.get("photo")
        if photo is None:
            return error(422, "the multipart body has no `photo` file", field="photo")
        image_bytes, image_type = photo.read(), photo.content_type or ""
    elif content_type in EXTENSIONS:
        image_bytes, image_type = body, content_type
    else:
        return error(
            415,
            "send the photo as the body (Content-Type image/jpeg, image/png or image/webp) "
            "or as multipart/form-data with a `photo` file",
        )
    try:
        event = card_upload(
            actor=None,
            source=source,
            image_bytes=image_bytes,
            content_type=image_type,
            headers=kept_headers(request),
            remote_addr=client_ip(request),
        )
    except CardImageRefused as exc:
        return error(exc.status, str(exc), field="photo")
    return JsonResponse(
        outcome_of(event).as_json(),
        status=202 if event.status == EventStatus.DRAFT else 200,
        json_dumps_params={"ensure_ascii": False},
    )
