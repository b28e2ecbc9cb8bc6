"""Alerts by API (SPEC C9 alerts; docs/alerts.md), mounted at `/alerts`: the alerts in your scope,
the robots' channels (managed by admins, directors, and managers for their region) and the
outbox's deliveries with a retry for the failed and uncertain ones. Thin: the pages call the same code."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from salesloop.core.schemas import RecordId, Text
from salesloop.notify import channels, outbox, selectors
from salesloop.notify.bots import webhook_url_masked
from salesloop.notify.models import Alert, BotChannel, BotDelivery

router = Router()  # /alerts


class DeliveryOut(Schema):
    id: int
    alert_id: int
    channel_id: int
    channel_name: str
    channel_kind: str
    status: str = Field(
        description="pending, sending, sent, failed (gave up; retry by hand) or uncertain (sent "
        "without an answer, or the worker stopped: the group may have it; check it, then retry by hand)"
    )
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str
    response_body: str = Field(description="what the robot answered last (truncated)")
    created_at: dt.datetime
    sent_at: dt.datetime | None


class AlertOut(Schema):
    id: int
    kind: str
    key: str
    open: bool
    title: str
    body: str
    explanation: dict[str, Any] = Field(description="the source's structured reason, as when raised")
    link: str = Field(description="the drill-down page")
    suggested_response: str
    region_id: int | None
    team_id: int | None
    raised_at: dt.datetime
    cleared_at: dt.datetime | None
    deliveries: list[DeliveryOut]


class AlertPageOut(Schema):
    items: list[AlertOut]
    next_before: int | None = Field(description="pass as `before` for the next page; null on the last")


class DeliveryPageOut(Schema):
    items: list[DeliveryOut]
    next_before: int | None


class ChannelOut(Schema):
    id: int
    kind: str
    name: str
    webhook_url: str = Field(description="masked: the token alone lets anyone post to the group")
    secret_set: bool = Field(description="a DingTalk signing secret is stored (never shown)")
    region_id: int | None
    team_id: int | None
    enabled: bool
    alert_kinds: list[str] = Field(description="kinds received; empty = all")
    created_at: dt.datetime
    updated_at: dt.datetime


class ChannelIn(Schema):
    kind: Text(10) = Field(description="wecom or dingtalk")  # type: ignore[valid-type]
    name: Text(200)  # type: ignore[valid-type]
    webhook_url: Text(1000)  # type: ignore[valid-type]
    secret: Text(300) = Field(default="", description="DingTalk's signing secret (SEC…), if signed")  # type: ignore[valid-type]
    region_id: RecordId | None = None
    team_id: RecordId | None = None
    enabled: bool = True
    alert_kinds: list[Text(40)] = Field(default_factory=list)  # type: ignore[valid-type]


class ChannelPatch(Schema):
    name: Text(200) | None = None  # type: ignore[valid-type]
    webhook_url: Text(1000) | None = None  # type: ignore[valid-type]
    secret: Text(300) | None = Field(default=None, description="a new secret; omitted or blank keeps it")  # type: ignore[valid-type]
    secret_clear: bool = Field(default=False, description="drop the stored secret")
    region_id: RecordId | None = None
    team_id: RecordId | None = None
    enabled: bool | None = None
    alert_kinds: list[Text(40)] | None = None  # type: ignore[valid-type]


class AlertQuery(Schema):
    status: Text(10) = Field(default="all", description="open, cleared or all")  # type: ignore[valid-type]
    before: RecordId | None = None
    limit: int | None = Field(default=None, ge=1, le=200)


class DeliveryQuery(Schema):
    status: Text(100) | None = Field(  # type: ignore[valid-type]
        default=None,
        description="pending, sending, sent, failed or uncertain, or several comma-separated "
        "(`failed,uncertain`: what needs a person)",
    )
    before: RecordId | None = None
    limit: int | None = Field(default=None, ge=1, le=200)


def delivery_out(delivery: BotDelivery) -> dict[str, Any]:
    return {
        "id": delivery.pk,
        "alert_id": delivery.alert_id,
        "channel_id": delivery.channel_id,
        "channel_name": delivery.channel.name,
        "channel_kind": delivery.channel.kind,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "last_error": delivery.last_error,
        "response_body": delivery.response_body,
        "created_at": delivery.created_at,
        "sent_at": delivery.sent_at,
    }


def alert_out(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "key": alert.key,
        "open": alert.is_open,
        "title": alert.title,
        "body": alert.body,
        "explanation": alert.explanation,
        "link": alert.link,
        "suggested_response": alert.suggested_response,
        "region_id": alert.region_id,
        "team_id": alert.team_id,
        "raised_at": alert.raised_at,
        "cleared_at": alert.cleared_at,
        "deliveries": [delivery_out(d) for d in alert.deliveries.all()],
    }


def channel_out(channel: BotChannel) -> dict[str, Any]:
    return {
        "id": channel.pk,
        "kind": channel.kind,
        "name": channel.name,
        "webhook_url": webhook_url_masked(channel.webhook_url),
        "secret_set": bool(channel.secret),
        "region_id": channel.region_id,
        "team_id": channel.team_id,
        "enabled": channel.enabled,
        "alert_kinds": list(channel.alert_kinds),
        "created_at": channel.created_at,
        "updated_at": channel.updated_at,
    }


def _manager(request: HttpRequest) -> Any:
    user = request.auth  # type: ignore[attr-defined]
    if not channels.may_manage_channels(user):
        raise PermissionDenied("Only administrators, sales directors and regional managers manage robots.")
    return user


@router.get("", response=AlertPageOut, summary="Alerts in your scope, newest first")
def alert_list(request: HttpRequest, query: Query[AlertQuery]) -> dict[str, Any]:
    page = selectors.alerts_page(
        user=request.auth,  # type: ignore[attr-defined]
        status=query.status,
        before=query.before,
        limit=query.limit,
    )
    return {"items": [alert_out(a) for a in page.alerts], "next_before": page.next_before}


@router.get(
    "/deliveries", response=DeliveryPageOut, summary="Robot deliveries (e.g. ?status=failed,uncertain)"
)
def delivery_list(request: HttpRequest, query: Query[DeliveryQuery]) -> dict[str, Any]:
    user = _manager(request)
    page = selectors.deliveries_page(user=user, status=query.status, before=query.before, limit=query.limit)
    return {"items": [delivery_out(d) for d in page.deliveries], "next_before": page.next_before}


@router.post(
    "/deliveries/{delivery_id}/retry",
    response=DeliveryOut,
    summary="Try a failed or uncertain delivery again",
)
def delivery_retry(request: HttpRequest, delivery_id: RecordId) -> dict[str, Any]:
    user = _manager(request)
    delivery = selectors.delivery_get(user=user, delivery_id=delivery_id)
    outbox.delivery_retry(actor=user, delivery=delivery)
    return delivery_out(selectors.delivery_get(user=user, delivery_id=delivery_id))


@router.get("/channels", response=list[ChannelOut], summary="Group robots you manage")
def channel_list(request: HttpRequest) -> list[dict[str, Any]]:
    user = _manager(request)
    return [channel_out(c) for c in channels.channels_visible(user=user)]


@router.post("/channels", response={201: ChannelOut}, summary="Add a WeCom or DingTalk group robot")
def channel_create(request: HttpRequest, payload: ChannelIn) -> Status[dict[str, Any]]:
    user = _manager(request)
    channel = channels.channel_create(actor=user, **payload.model_dump())
    return Status(201, channel_out(channel))


@router.get("/channels/{channel_id}", response=ChannelOut, summary="One group robot")
def channel_detail(request: HttpRequest, channel_id: RecordId) -> dict[str, Any]:
    user = _manager(request)
    return channel_out(channels.channel_get(user=user, channel_id=channel_id))


@router.patch("/channels/{channel_id}", response=ChannelOut, summary="Change a group robot")
def channel_update(request: HttpRequest, channel_id: RecordId, payload: ChannelPatch) -> dict[str, Any]:
    user = _manager(request)
    channel = channels.channel_get(user=user, channel_id=channel_id)
    nullable = {"region_id", "team_id"}  # null there means "no region / no team"; elsewhere "unchanged"
    changes = {
        k: v for k, v in payload.model_dump(exclude_unset=True).items() if v is not None or k in nullable
    }
    channel = channels.channel_update(actor=user, channel=channel, **changes)
    return channel_out(channel)


@router.get("/{alert_id}", response=AlertOut, summary="One alert with its deliveries")
def alert_detail(request: HttpRequest, alert_id: RecordId) -> dict[str, Any]:
    return alert_out(selectors.alert_get(user=request.auth, alert_id=alert_id))  # type: ignore[attr-defined]
