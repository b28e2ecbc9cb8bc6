"""The two group-robot protocols (docs/alerts.md): WeCom's group robot and DingTalk's custom robot.

Both take a JSON POST to their webhook and answer HTTP 200 with `{"errcode": 0, ...}` on success;
any other status, a non-zero errcode (45009 over the rate limit, 310000 bad signature or keyword)
or a request that never left (refused, DNS, connect timeout) is a failure whose reason is kept on
the delivery. A request that left but got no answer (read timeout, connection dropped) is neither:
its outcome is *uncertain*, and the outbox does not send it again by itself.

Webhook URLs must point at the bots' own hosts (no request to an arbitrary address: a webhook is
typed in by people); `SALESLOOP_BOT_EXTRA_HOSTS` adds hosts (`host:port`, http allowed) for an
on-premise relay or the tests' fake robot.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from salesloop.core import clock
from salesloop.core.roles import mask_identifier

WECOM_HOST = "qyapi.weixin.qq.com"
WECOM_PATH = "/cgi-bin/webhook/send"
WECOM_PARAM = "key"
DINGTALK_HOST = "oapi.dingtalk.com"
DINGTALK_PATH = "/robot/send"
DINGTALK_PARAM = "access_token"

PROTOCOLS = {
    "wecom": (WECOM_HOST, WECOM_PATH, WECOM_PARAM),
    "dingtalk": (DINGTALK_HOST, DINGTALK_PATH, DINGTALK_PARAM),
}
WECOM_MARKDOWN_LIMIT = 4096  # bytes of `content` the WeCom robot accepts
RESPONSE_KEEP = 2000  # characters of a robot's answer kept on the delivery
ANSWER_READ = 64_000  # bytes of an answer read (the robots answer a few dozen)


def webhook_url_error(kind: str, url: str) -> str | None:
    """Why `url` is not a webhook of this kind of robot, or None when it is."""
    if kind not in PROTOCOLS:
        return _("Unknown robot kind.")
    host, path, param = PROTOCOLS[kind]
    try:
        parts = urllib.parse.urlsplit(url)
        netloc = parts.netloc.lower()
    except ValueError:
        return _("Not a valid URL.")
    extra = {h.lower() for h in getattr(settings, "SALESLOOP_BOT_EXTRA_HOSTS", [])}
    if netloc in extra:
        if parts.scheme not in ("http", "https"):
            return _("Use an http or https URL.")
    elif parts.scheme != "https" or netloc != host:
        return _("Use the robot's webhook: %(example)s") % {"example": f"https://{host}{path}?{param}=…"}
    if parts.path != path:
        return _("The webhook's path must be %(path)s.") % {"path": path}
    values = urllib.parse.parse_qs(parts.query).get(param, [])
    if len(values) != 1 or not values[0].strip():
        return _("The webhook needs its %(param)s parameter.") % {"param": param}
    if parts.fragment or parts.username or parts.password:
        return _("Not a valid URL.")
    return None


def webhook_url_masked(url: str) -> str:
    """The webhook with its key / access token masked: the token alone lets anyone post to the group."""
    try:
        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return ""
    masked = [(k, mask_identifier(v) if k in (WECOM_PARAM, DINGTALK_PARAM) else v) for k, v in query]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(masked, safe="*")))


def dingtalk_sign(*, timestamp_ms: int, secret: str) -> str:
    """DingTalk's signed mode: base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")),
    URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


def request_of(*, kind: str, url: str, secret: str, title: str, text: str) -> tuple[str, dict[str, Any]]:
    """The URL to POST to and the JSON body, for one markdown message."""
    if kind == "wecom":
        content = text.encode()[:WECOM_MARKDOWN_LIMIT].decode(errors="ignore")
        return url, {"msgtype": "markdown", "markdown": {"content": content}}
    if secret:
        timestamp_ms = int(clock.now().timestamp() * 1000)
        url = f"{url}&timestamp={timestamp_ms}&sign={dingtalk_sign(timestamp_ms=timestamp_ms, secret=secret)}"
    return url, {"msgtype": "markdown", "markdown": {"title": title[:100], "text": text}}


@dataclass(frozen=True)
class Answer:
    ok: bool
    error: str  # why it failed ("" when ok)
    body: str  # what the robot answered (truncated)
    # The request was sent but no answer came: the group may or may not have the message.
    uncertain: bool = False


def post(*, url: str, payload: dict[str, Any], timeout: float) -> Answer:
    """POST the message; success is HTTP 200 with errcode 0. Never raises.

    Which failures are certain rests on CPython's `AbstractHTTPHandler.do_open` (read in 3.11;
    tests/notify/test_at_most_once.py would notice a change): an `OSError` while connecting or
    sending the request (refused, DNS, connect timeout, reset while writing) is wrapped in
    `URLError`; `h.getresponse()` runs outside that wrapper, so a read timeout,
    `RemoteDisconnected` or a reset after the request went out arrives raw (an `OSError` or an
    `http.client.HTTPException`). `HTTPError` is an answer with an error status, and `InvalidURL`
    is raised before connecting. Anything else, errors while reading the answer's body and a 200
    whose body was cut short included, happened after the robot may have acted: `uncertain`.
    """
    data = json.dumps(payload, ensure_ascii=False).encode()
    request = urllib.request.Request(  # noqa: S310 - the URL was validated against the robots' hosts
        url, data=data, method="POST", headers={"Content-Type": "application/json; charset=utf-8"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, raw = response.status, response.read(ANSWER_READ)
            # read(n) returns what came before the connection ended, without an error: bytes the
            # Content-Length promised and never arrived mean the answer was cut short.
            cut_short = len(raw) < ANSWER_READ and bool(getattr(response, "length", None))
    except urllib.error.HTTPError as exc:
        raw = exc.read(RESPONSE_KEEP) if exc.fp else b""
        return Answer(False, f"HTTP {exc.code}", raw.decode(errors="replace")[:RESPONSE_KEEP])
    except urllib.error.URLError as exc:  # never sent: connecting or sending failed
        return Answer(False, f"not sent: {exc.reason}"[:500], "")
    except http.client.InvalidURL as exc:  # never sent: refused before connecting
        return Answer(False, f"not sent: {exc}"[:500], "")
    except (http.client.HTTPException, OSError, ValueError) as exc:  # sent, no answer
        reason = str(exc) or type(exc).__name__
        return Answer(False, f"no answer: {reason}"[:500], "", uncertain=True)
    body = raw.decode(errors="replace")
    if status != 200:
        return Answer(False, f"HTTP {status}", body[:RESPONSE_KEEP])
    if cut_short:  # a 200 whose errcode we never saw: it may well have been 0
        return Answer(False, "no answer: the answer was cut short", body[:RESPONSE_KEEP], uncertain=True)
    try:
        answer = json.loads(body)
        errcode = answer.get("errcode") if isinstance(answer, dict) else None
    except ValueError:
        return Answer(False, "the answer is not JSON", body[:RESPONSE_KEEP])
    if errcode != 0:
        errmsg = answer.get("errmsg", "") if isinstance(answer, dict) else ""
        return Answer(False, f"errcode {errcode}: {errmsg}"[:500], body[:RESPONSE_KEEP])
    return Answer(True, "", body[:RESPONSE_KEEP])
