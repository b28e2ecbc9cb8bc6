"""WeCom (企业微信) "add external contact" callbacks (SPEC C1.1), in WeCom's own protocol.

WeCom signs and encrypts every callback the WXBizMsgCrypt way (developer.work.weixin.qq.com,
"回调配置" / "加解密方案"):

- signature: `msg_signature = sha1("".join(sorted([token, timestamp, nonce, encrypted])))`;
- cipher: AES-256-CBC, key = base64decode(EncodingAESKey + "="), IV = the key's first 16 bytes,
  PKCS#7 padding to 32-byte blocks;
- plaintext: 16 random bytes + 4-byte big-endian length + message + receiveid (the corp id of a
  self-built app; a third-party suite would use its suite id, which we do not serve).

A GET is the URL check WeCom makes when an admin saves the callback URL: we answer the decrypted
`echostr`. A POST carries `<xml><Encrypt>…</Encrypt></xml>`; the decrypted event of
`Event=change_external_contact` with `ChangeType` add_external_contact / add_half_external_contact
becomes an arrival identified by the customer's WeCom external id; every other event is stored
and marked ignored. WeCom wants the bare text `success`; anything else makes it retry (three times
within seconds), and a retry is the same event, so idempotency on the event key keeps it to one.

What is stored (DESIGN rule 5, raw first): the event's body is the *decrypted* event as a JSON
item, with the verbatim inner XML under `_raw_xml` — it is what WeCom actually said, readable and
retryable without the key (which an admin may rotate). The encrypted envelope and its
msg_signature / timestamp / nonce go into the event's headers (`X-Wecom-*`, the envelope capped at
64 KB) as proof of origin: with the token, anyone can re-check that WeCom sent it.

No timestamp window is enforced: WeCom does not ask for one, its retries may carry the first
timestamp, and a replayed callback is harmless here (it finds the stored event and creates nothing).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import struct
from collections.abc import Mapping
from typing import Any
from xml.etree import ElementTree
from xml.parsers import expat

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.http import HttpRequest, HttpResponse

from salesloop.intake.hooks import client_ip, error, kept_headers
from salesloop.intake.models import EventStatus, Source
from salesloop.intake.services import Outcome, event_receive

log = logging.getLogger(__name__)

# The change types that mean "a customer was added" (add_half_external_contact: added without the
# member's confirmation yet, 免验证添加). Both are new people for sales; edits and deletions are not.
LEAD_CHANGE_TYPES = frozenset({"add_external_contact", "add_half_external_contact"})
# Fields of the decrypted event kept in the stored item (the rest stays in `_raw_xml`).
ITEM_KEYS = (
    "ToUserName",
    "MsgType",
    "Event",
    "ChangeType",
    "ExternalUserID",
    "UserID",
    "CreateTime",
    "State",
    "WelcomeCode",
)
RAW_ENVELOPE_LIMIT = 64 * 1024
AES_BLOCK = 16
PAD_BLOCK = 32  # WXBizMsgCrypt pads to 32 bytes, not AES's 16


class WecomRefused(Exception):
    """A delivery we do not accept: `status` is the HTTP answer, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class XmlRefused(ValueError):
    """Not well-formed XML, or XML with a DOCTYPE (the door to entity expansion, XXE and
    "billion laughs"); WeCom never sends one."""


# ---- the protocol ---------------------------------------------------------------------------


def signature_of(*, token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    joined = "".join(sorted([token, timestamp, nonce, encrypted])).encode()
    return hashlib.sha1(joined).hexdigest()  # noqa: S324 -- WeCom's protocol fixes SHA-1


def aes_key_of(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey; a misconfigured source is refused with
    503 (our fault, not the sender's), so WeCom's retries find it fixed."""
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise WecomRefused(
            503, "this WeCom source's EncodingAESKey is not 43 base64 characters; fix the source"
        )
    return key


def message_decrypt(*, key: bytes, encrypted: str, corp_id: str) -> bytes:
    """The message inside WeCom's ciphertext, after checking it was encrypted for our corp.

    Called only after the signature matched, so a failure here is a wrong EncodingAESKey or corp id
    on our side, or a sender holding our token but not our key — either way, said plainly."""
    try:
        ciphertext = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WecomRefused(400, "the encrypted message is not base64") from exc
    if not ciphertext or len(ciphertext) % AES_BLOCK:
        raise WecomRefused(400, "the encrypted message is not whole AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:AES_BLOCK])).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    pad = padded[-1]
    if not 1 <= pad <= PAD_BLOCK or padded[-pad:] != bytes([pad]) * pad:
        raise WecomRefused(400, "the message does not decrypt with this source's EncodingAESKey")
    content = padded[:-pad]
    if len(content) < 20:
        raise WecomRefused(400, "the decrypted message is too short to hold a length and a corp id")
    (length,) = struct.unpack(">I", content[16:20])
    if 20 + length > len(content):
        raise WecomRefused(400, "the decrypted message's length field exceeds the message")
    message, receive_id = content[20 : 20 + length], content[20 + length :]
    if receive_id != corp_id.encode():
        shown = receive_id.decode("utf-8", errors="replace")[:64]
        raise WecomRefused(
            401, f"the message was encrypted for corp id {shown!r}, not this source's {corp_id!r}"
        )
    return message


def _refuse_declaration(*_: object) -> None:
    raise XmlRefused("XML with a DOCTYPE or entity declaration is refused")


def xml_fields(data: bytes) -> dict[str, str]:
    """The children of a flat `<xml>…</xml>` document as {tag: text}.

    defusedxml is not installed, so a first expat pass stops at any DOCTYPE: without one no entity
    can be declared, so the ElementTree parse that follows expands nothing but the five built-ins.
    (Matching "<!DOCTYPE" as text would also refuse an event whose CDATA merely mentions it.)
    """
    scanner = expat.ParserCreate()
    scanner.StartDoctypeDeclHandler = _refuse_declaration
    scanner.EntityDeclHandler = _refuse_declaration
    scanner.UnparsedEntityDeclHandler = _refuse_declaration
    try:
        scanner.Parse(data, True)
        root = ElementTree.fromstring(data)  # noqa: S314 -- no DOCTYPE got past the expat pass
    except (expat.ExpatError, ElementTree.ParseError) as exc:
        raise XmlRefused(f"not well-formed XML: {exc}") from exc
    if root.tag != "xml":
        raise XmlRefused(f"the root element is <{root.tag}>, not <xml>")
    return {child.tag: (child.text or "").strip() for child in root}


# ---- receiving ------------------------------------------------------------------------------


def wecom_receive(request: HttpRequest, source: Source, body: bytes) -> HttpResponse:
    """`/hooks/<slug>` of a WeCom source: GET is WeCom's URL check, POST an encrypted callback."""
    try:
        if not (source.wecom_token and source.wecom_corp_id):
            raise WecomRefused(503, "this WeCom source has no Token or corp id; fix the source")
        key = aes_key_of(source.wecom_aes_key)
        if request.method == "GET":
            return _url_verify(request, source, key)
        return _callback(request, source, key, body)
    except WecomRefused as exc:
        log.warning("wecom source %s refused a %s: %s", source.slug, request.method, exc)
        return error(exc.status, str(exc))


def _signature_check(source: Source, query: Mapping[str, str], encrypted: str) -> None:
    signature, timestamp, nonce = (query.get(name, "") for name in ("msg_signature", "timestamp", "nonce"))
    if not (signature and timestamp and nonce):
        raise WecomRefused(401, "msg_signature, timestamp and nonce are required in the query")
    expected = signature_of(token=source.wecom_token, timestamp=timestamp, nonce=nonce, encrypted=encrypted)
    if not hmac.compare_digest(expected, signature.strip().lower()):
        raise WecomRefused(401, "msg_signature does not match this source's Token")


def _url_verify(request: HttpRequest, source: Source, key: bytes) -> HttpResponse:
    """WeCom's check of the URL: answer the decrypted echostr, bare (no quotes, BOM or newline)."""
    # Base64 has no spaces: one here is a '+' that a sender forgot to URL-encode.
    echostr = request.GET.get("echostr", "").replace(" ", "+")
    if not echostr:
        raise WecomRefused(400, "echostr is required to verify the URL")
    _signature_check(source, request.GET, echostr)
    plain = message_decrypt(key=key, encrypted=echostr, corp_id=source.wecom_corp_id)
    return HttpResponse(plain, content_type="text/plain; charset=utf-8")


def _callback(request: HttpRequest, source: Source, key: bytes, body: bytes) -> HttpResponse:
    try:
        envelope = xml_fields(body)
    except XmlRefused as exc:
        raise WecomRefused(400, f"the callback body: {exc}") from exc
    encrypted = envelope.get("Encrypt", "")
    if not encrypted:
        raise WecomRefused(400, "the callback body has no <Encrypt>")
    _signature_check(source, request.GET, encrypted)
    plaintext = message_decrypt(key=key, encrypted=encrypted, corp_id=source.wecom_corp_id)
    headers = _evidence(request, body)
    ip = client_ip(request)
    try:
        fields = xml_fields(plaintext)
    except XmlRefused as exc:
        # Signed and encrypted with our secrets, so it is kept (raw first) — as text, never parsed
        # again — in the dead-letter list, and refused so that it is visible at the sender too.
        reason = f"the decrypted WeCom event: {exc}"
        outcome = _event_settled(
            source=source,
            body=plaintext.decode("utf-8", errors="replace").replace("\x00", "\ufffd"),
            external_id=f"unparsed:{hashlib.sha256(plaintext).hexdigest()[:40]}",
            headers=headers,
            remote_addr=ip,
            status=EventStatus.FAILED,
            reason=reason,
        )
        response = error(400, reason)
        response["X-Salesloop-Event-Id"] = str(outcome.event_id)
        return response
    item = wecom_item(fields, plaintext)
    arguments: dict[str, Any] = {
        "source": source,
        "body": json.dumps(item, ensure_ascii=False),
        "external_id": item["event_key"],
        "headers": headers,
        "remote_addr": ip,
    }
    if _is_new_customer(fields):
        outcome = event_receive(**arguments)
    else:
        kind = "/".join(
            filter(None, (fields.get("Event") or fields.get("MsgType"), fields.get("ChangeType")))
        )
        reason = f"WeCom {kind or 'message'}: stored; only add_external_contact events create leads"
        outcome = _event_settled(**arguments, status=EventStatus.IGNORED, reason=reason)
    return _success(outcome)


def _is_new_customer(fields: Mapping[str, str]) -> bool:
    return (
        fields.get("MsgType") == "event"
        and fields.get("Event") == "change_external_contact"
        and fields.get("ChangeType") in LEAD_CHANGE_TYPES
    )


def wecom_item(fields: Mapping[str, str], plaintext: bytes) -> dict[str, str]:
    """The decrypted event as the item the `wecom` field mapping reads.

    The event key is WeCom's identity of one callback: a retry repeats it exactly, while a later
    add of the same customer has another CreateTime and so is a new event (a touch, 回流).
    """
    item = {name: fields.get(name, "") for name in ITEM_KEYS}
    external_user_id = item["ExternalUserID"]
    if external_user_id:
        item["event_key"] = f"{external_user_id}:{item['ChangeType']}:{item['CreateTime']}"
        item["Name"] = contact_placeholder_name(external_user_id)
    elif fields.get("MsgId"):
        item["event_key"] = f"msg:{fields['MsgId']}"
    else:
        digest = hashlib.sha256(plaintext).hexdigest()[:32]
        item["event_key"] = f"{item['Event'] or item['MsgType']}:{item['CreateTime']}:{digest}"
    item["event_key"] = item["event_key"][:128]
    item["_raw_xml"] = plaintext.decode("utf-8", errors="replace")
    return item


def contact_placeholder_name(external_user_id: str) -> str:
    """The callback carries no name (the real one needs WeCom's externalcontact/get API, out of
    scope here), so the contact is named by its id: the kind prefix (wm = WeChat user, wo = WeCom
    user) and the *tail* — ids of one corp share their leading characters, so a head would make
    every customer look alike in a list."""
    if len(external_user_id) <= 12:
        return f"企业微信客户 {external_user_id}"
    return f"企业微信客户 {external_user_id[:2]}…{external_user_id[-8:]}"


def _evidence(request: HttpRequest, body: bytes) -> dict[str, str]:
    """What proves WeCom sent it: the signature inputs and the encrypted envelope as received."""
    evidence = kept_headers(request)
    for name in ("msg_signature", "timestamp", "nonce"):
        evidence[f"X-Wecom-{name.replace('_', '-').title()}"] = request.GET.get(name, "")
    evidence["X-Wecom-Raw"] = body[:RAW_ENVELOPE_LIMIT].decode("utf-8", errors="replace")
    return evidence


def _event_settled(
    *,
    source: Source,
    body: str,
    external_id: str,
    headers: dict[str, str],
    remote_addr: str | None,
    status: str,
    reason: str,
) -> Outcome:
    """Store an event that is not processed into a lead, already decided (ignored, or failed with
    the reason); a replay finds the event already settled and answers with it."""
    return event_receive(
        source=source,
        body=body,
        external_id=external_id,
        headers=headers,
        remote_addr=remote_addr,
        settle=(status, reason),
    )


def _success(outcome: Outcome) -> HttpResponse:
    """WeCom's acknowledgement is the bare word; our outcome rides in headers for people and logs."""
    response = HttpResponse("success", content_type="text/plain; charset=utf-8")
    response["X-Salesloop-Event-Id"] = str(outcome.event_id)
    response["X-Salesloop-Event-Status"] = outcome.status
    return response
