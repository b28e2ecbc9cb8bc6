from __future__ import annotations

import json
import time

import pytest

from salesloop.intake.services import source_create
from salesloop.intake.signing import signature_for

SECRET = "s3cret-s3cret-s3cret"


def signed_post(
    client, source, payload, *, secret: str = SECRET, timestamp: int | None = None, raw: bytes | None = None
):
    body = raw if raw is not None else json.dumps(payload, ensure_ascii=False).encode()
    ts = str(timestamp if timestamp is not None else int(time.time()))
    return client.post(
        f"/hooks/{source.slug}",
        body,
        content_type="application/json",
        headers={"X-Salesloop-Timestamp": ts, "X-Salesloop-Signature": signature_for(secret, ts, body)},
    )


@pytest.fixture
def douyin(org):
    return source_create(actor=None, kind="douyin", name="抖音-618活动", secret=SECRET)


@pytest.fixture
def call400(org):
    return source_create(actor=None, kind="call_400", name="400热线", secret=SECRET)


@pytest.fixture
def web_form(org):
    return source_create(actor=None, kind="web_form", name="官网咨询")


def clue(n: int, phone: str = "13800138000", **extra):
    return {
        "clue_id": f"clue-{n}",
        "telephone": phone,
        "name": f"客户{n}",
        "province_name": "",
        "city_name": "",
        "remark": "想了解报价",
        "remark_dict": {"公司名称": f"上海测试{n}科技有限公司"},
        "create_time_detail": "2026-11-27 10:00:00",
        "ad_name": "618大促",
        "module_name": "表单",
        "app_name": "抖音",
        **extra,
    }
