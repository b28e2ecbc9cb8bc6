"""A local group robot speaking both protocols (WeCom's group robot, DingTalk's custom robot), so
delivery is tested over real HTTP: it checks each message's JSON shape, recomputes DingTalk's
signature from the timestamp and its own copy of the secret, and can be told to fail — before
answering (an error status, an errcode, not JSON) or after reading the request without a proper
answer (never answering, dropping the connection, cutting the answer short)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from salesloop.notify.alerts import alert_state_set
from salesloop.notify.channels import channel_create

WECOM_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
DINGTALK_TOKEN = "c3bd8e4b0a1f2e3d4c5b6a7980f1e2d3c4b5a6978"
DINGTALK_SECRET = "SECb6f1f9c7e2d94d3a8c1b0e6f5a4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6"


@dataclass
class Received:
    robot: str  # wecom | dingtalk
    query: dict[str, list[str]]
    raw_query: str
    body: dict[str, Any]
    answered: int  # HTTP status
    errcode: int | None


@dataclass
class FakeRobot:
    """What the robot was sent, and how it should answer the next requests."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    # one per request: "500" | "45009" | "notjson", or, after reading the request:
    # "hang" (never answers), "drop" (closes without answering), "cut" (answer cut short)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    delay: float = 0.0  # seconds every answer waits (lets concurrent claims overlap)
    released: threading.Event = field(default_factory=threading.Event)  # ends "hang" at teardown
    start: Callable[[], None] | None = None  # a robot that is down: starts listening

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def wecom_url(self) -> str:
        return f"{self.base}/cgi-bin/webhook/send?key={WECOM_KEY}"

    @property
    def dingtalk_url(self) -> str:
        return f"{self.base}/robot/send?access_token={DINGTALK_TOKEN}"

    def fail(self, *modes: str) -> None:
        with self.lock:
            self.failures.extend(modes)

    def delivered(self) -> list[Received]:
        return [r for r in self.received if r.answered == 200 and r.errcode == 0]


def _dingtalk_signature_ok(query: dict[str, list[str]]) -> bool:
    # DingTalk: sign = urlencode(base64(HmacSHA256(key=secret, msg=timestamp + "\n" + secret))).
    # parse_qs has undone the URL encoding; a '+' sent raw would have come back as a space.
    if len(query.get("timestamp", [])) != 1 or len(query.get("sign", [])) != 1:
        return False
    timestamp = query["timestamp"][0]
    expected = base64.b64encode(
        hmac.new(
            DINGTALK_SECRET.encode("utf-8"), f"{timestamp}\n{DINGTALK_SECRET}".encode(), hashlib.sha256
        ).digest()
    ).decode()
    return hmac.compare_digest(query["sign"][0], expected)


def _shape_ok(robot: str, body: Any) -> bool:
    if (
        not isinstance(body, dict)
        or body.get("msgtype") != "markdown"
        or set(body) != {"msgtype", "markdown"}
    ):
        return False
    markdown = body["markdown"]
    if robot == "wecom":
        return (
            isinstance(markdown, dict)
            and set(markdown) == {"content"}
            and isinstance(markdown["content"], str)
            and 0 < len(markdown["content"].encode()) <= 4096
        )
    return (
        isinstance(markdown, dict)
        and set(markdown) == {"title", "text"}
        and all(isinstance(markdown[k], str) and markdown[k] for k in ("title", "text"))
    )


def _handler(robot_state: FakeRobot) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet test output
            pass

        def do_POST(self) -> None:
            path, _, raw_query = self.path.partition("?")
            query = urllib.parse.parse_qs(raw_query, keep_blank_values=True)
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            with robot_state.lock:
                mode = robot_state.failures.pop(0) if robot_state.failures else ""
            if mode in ("hang", "drop", "cut"):
                # The request arrived whole: as far as the group is concerned, it may be posted.
                robot = "wecom" if path == "/cgi-bin/webhook/send" else "dingtalk"
                with robot_state.lock:
                    robot_state.received.append(Received(robot, query, raw_query, json.loads(raw), 0, None))
                self._no_proper_answer(mode)
                return
            if robot_state.delay:
                time.sleep(robot_state.delay)
            try:
                body = json.loads(raw.decode("utf-8"))
            except ValueError:
                body = None
            if path == "/cgi-bin/webhook/send":
                robot = "wecom"
                if query.get("key") != [WECOM_KEY]:
                    errcode, errmsg = 93000, "invalid webhook url"
                elif not _shape_ok(robot, body):
                    errcode, errmsg = 40008, "invalid message type"
                else:
                    errcode, errmsg = 0, "ok"
            elif path == "/robot/send":
                robot = "dingtalk"
                if query.get("access_token") != [DINGTALK_TOKEN]:
                    errcode, errmsg = 300001, "token is not exist"
                elif not _dingtalk_signature_ok(query):
                    errcode, errmsg = 310000, "sign not match"
                elif not _shape_ok(robot, body):
                    errcode, errmsg = 40035, "缺少参数 json"
                else:
                    errcode, errmsg = 0, "ok"
            else:
                self.send_response(404)
                self.end_headers()
                return
            status = 200
            if mode == "500":
                status, errcode, errmsg = 500, None, "internal error"
            elif mode == "45009":
                errcode, errmsg = 45009, "api freq out of limit"
            answer = json.dumps({"errcode": errcode, "errmsg": errmsg}, ensure_ascii=False).encode()
            if mode == "notjson":
                errcode, answer = None, b"<html>502 Bad Gateway</html>"
            with robot_state.lock:
                robot_state.received.append(
                    Received(robot, query, raw_query, body or {}, status, errcode if status == 200 else None)
                )
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:  # the client gave up waiting
                pass

        def _no_proper_answer(self, mode: str) -> None:
            if mode == "hang":
                robot_state.released.wait(30)
            elif mode == "cut":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.write(b'{"errc')
                self.wfile.flush()
            self.close_connection = True
            self.connection.close()  # "drop": nothing at all, the connection just ends

    return Handler


def _fake_robot(settings: Any, *, listening: bool) -> Iterator[FakeRobot]:
    state = FakeRobot()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state), bind_and_activate=False)
    server.server_bind()  # the port is ours; until it listens, connecting to it is refused
    state.port = server.server_address[1]
    running: list[threading.Thread] = []

    def start() -> None:
        server.server_activate()
        running.append(threading.Thread(target=server.serve_forever, daemon=True))
        running[0].start()

    state.start = start
    if listening:
        start()
    settings.SALESLOOP_BOT_EXTRA_HOSTS = [f"127.0.0.1:{state.port}"]
    settings.SALESLOOP_BOT_TIMEOUT = 1
    yield state
    state.released.set()
    if running:
        server.shutdown()
    server.server_close()


@pytest.fixture
def robot(settings):
    """A running fake robot; its host is allowed as a webhook host for the test."""
    yield from _fake_robot(settings, listening=True)


@pytest.fixture
def robot_down(settings):
    """A fake robot that is down (its port refuses connections) until `robot_down.start()`."""
    yield from _fake_robot(settings, listening=False)


def wecom_channel(robot: FakeRobot, *, actor, region=None, team=None, **extra):
    return channel_create(
        actor=actor,
        kind="wecom",
        name=extra.pop("name", "华东销售群"),
        webhook_url=robot.wecom_url,
        region_id=region.pk if region else None,
        team_id=team.pk if team else None,
        **extra,
    )


def dingtalk_channel(robot: FakeRobot, *, actor, region=None, team=None, secret=DINGTALK_SECRET, **extra):
    return channel_create(
        actor=actor,
        kind="dingtalk",
        name=extra.pop("name", "华东钉钉群"),
        webhook_url=robot.dingtalk_url,
        secret=secret,
        region_id=region.pk if region else None,
        team_id=team.pk if team else None,
        **extra,
    )


def raise_alert(org, *, key: str = "indicator:conversion:week:region:east", active: bool = True, **extra):
    """An indicator of 华东 entering (or leaving) warning, as the insights app reports it."""
    values: dict[str, Any] = {
        "kind": "indicator.conversion",
        "title": "华东 转化率预警",
        "body": "本周线索转化率 8%，低于阈值 12%。",
        "explanation": {
            "kind": "indicator",
            "summary": "转化率 8% < 阈值 12%（近 4 周均值 15%）",
            "value": 0.08,
            "threshold": 0.12,
        },
        "link": "/insights/funnel/?region=east",
        "suggested_response": "复盘渠道质量：检查本周各来源的线索质量与分配。",
        "region": org.east,
        "recipients": [org.carol],
    }
    values.update(extra)
    return alert_state_set(key=key, active=active, **values)
