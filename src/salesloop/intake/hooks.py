"""`/hooks/<slug>`: where channels deliver (SPEC C1.1–C1.2).

Each request is authenticated the channel's way, split into items with the channel's own id, and
every item is stored raw and processed in the transaction whose answer acknowledges it.
Answers are JSON: `{"event_id", "status": "created" | "touch" | "failed", "lead_id"}` for one item,
`{"results": [...]}` for a batch.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from salesloop.core import clock
from salesloop.core.rows import first_row
from salesloop.intake.burst import Delivery, deliveries_read, deliveries_receive
from salesloop.intake.coalesce import Coalescer
from salesloop.intake.models import InboundEvent, Source, SourceKind
from salesloop.intake.services import MAX_BODY_BYTES, Outcome, event_receive
from salesloop.intake.signing import SignatureError, signature_verify

# Headers worth keeping beside the raw body: who sent it, how, and its signature.
KEPT_HEADERS = (
    "Content-Type",
    "User-Agent",
    "X-Salesloop-Timestamp",
    "X-Salesloop-Signature",
    "X-Forwarded-For",
    "X-Request-Id",
)

# Public web forms: at most this many submissions per IP address per window (counted in the
# database, so every web process shares the count).
FORM_RATE_LIMIT = 5
FORM_RATE_WINDOW = dt.timedelta(minutes=10)


def error(status: int, message: str, field: str | None = None) -> JsonResponse:
    body: dict[str, Any] = {"detail": message}
    if field:
        body["field"] = field
    return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})


def answer(outcomes: list[Outcome], batch: bool) -> JsonResponse:
    params = {"ensure_ascii": False}
    if batch:
        return JsonResponse({"results": [o.as_json() for o in outcomes]}, json_dumps_params=params)
    return JsonResponse(outcomes[0].as_json(), json_dumps_params=params)


def kept_headers(request: HttpRequest) -> dict[str, str]:
    return {name: request.headers[name] for name in KEPT_HEADERS if name in request.headers}


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def read_body(request: HttpRequest, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The body, or None when it is over the limit (checked before reading it all)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return None
    body = request.read(limit + 1)
    return None if len(body) > limit else body


@csrf_exempt
def hook(request: HttpRequest, slug: str) -> HttpResponse:
    source = first_row(Source, "slug = %s", [slug], order_by="")
    if source is None:
        return error(404, "no such source")
    if not source.enabled:
        return error(403, "this source is disabled")
    receiver = RECEIVERS.get(source.kind)
    if receiver is None:
        return error(404, f"{source.kind} sources do not take deliveries here")
    if request.method == "GET" and source.kind == SourceKind.WECOM:
        return receiver(request, source, b"")
    if request.method != "POST":
        return error(405, "POST the payload")
    # Payloads are small JSON or XML (1 MB); only card photos are bigger.
    limit = MAX_BODY_BYTES
    if source.kind == SourceKind.CARD:
        from salesloop.intake.cards import CARD_MAX_BYTES

        limit = CARD_MAX_BYTES
    body = read_body(request, limit)
    if body is None:
        return error(413, f"the body is larger than {limit} bytes")
    return receiver(request, source, body)


def _signed(request: HttpRequest, source: Source, body: bytes) -> JsonResponse | None:
    try:
        signature_verify(
            secret=source.secret,
            timestamp=request.headers.get("X-Salesloop-Timestamp"),
            signature=request.headers.get("X-Salesloop-Signature"),
            body=body,
        )
    except SignatureError as exc:
        return error(401, str(exc))
    return None


ID_KEYS = {
    SourceKind.DOUYIN: "clue_id",
    SourceKind.CALL_400: "call_id",
    SourceKind.API: "id",
    SourceKind.WEB_FORM: "submission_id",
    SourceKind.REFERRAL: "referral_id",
}


def _items(body: bytes) -> tuple[list[Any] | None, bool]:
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None, False
    if isinstance(parsed, list):
        return parsed, True
    return [parsed], False


def receive_json_items(request: HttpRequest, source: Source, body: bytes) -> HttpResponse:
    """Signed JSON channels (Douyin, 400 calls, API): one object or a list of them."""
    refused = _signed(request, source, body)
    if refused is not None:
        return refused
    items, batch = _items(body)
    headers, ip = kept_headers(request), client_ip(request)
    if items is None:
        # Not JSON: keep it anyway (nothing inbound is lost) as a failed event with the reason.
        outcome = event_receive(
            source=source, body=body.decode("utf-8", errors="replace"), headers=headers, remote_addr=ip
        )
        return answer([outcome], batch=False)
    if not items:
        return error(422, "an empty list has nothing to receive")
    if len(items) > 1000:
        return error(413, "at most 1000 items per request")
    id_key = _id_path(source)
    deliveries = deliveries_read(
        [
            Delivery(
                source=source,
                body=json.dumps(item, ensure_ascii=False),
                external_id=_external_id(item, id_key),
                headers=headers,
                remote_addr=ip,
            )
            for item in items
        ]
    )
    # Stored and processed together with whatever other threads of this process received at the
    # same moment (group commit); answered once committed.
    return answer(BURST.submit(deliveries), batch)


BURST: Coalescer[Delivery, Outcome] = Coalescer(deliveries_receive, top_up=True)


def _id_path(source: Source) -> str:
    from salesloop.intake.channels import mapping_for

    return mapping_for(source.kind, source.field_mapping).get("external_id", ID_KEYS.get(source.kind, "id"))


def _external_id(item: Any, path: str) -> str:
    from salesloop.intake.channels import _lookup

    if not isinstance(item, dict):
        return ""
    value = _lookup(item, path)
    return "" if value is None or isinstance(value, dict | list) else str(value).strip()[:128]


def form_rate_limited(source: Source, ip: str | None) -> bool:
    if ip is None:
        return False
    since = clock.now() - FORM_RATE_WINDOW
    return (
        InboundEvent.objects.filter(source=source, remote_addr=ip, received_at__gte=since).count()
        >= FORM_RATE_LIMIT
    )


FORM_FIELDS = ("name", "phone", "company", "message", "email", "submission_id")


def form_submit(
    source: Source, fields: dict[str, str], request: HttpRequest
) -> tuple[Outcome | None, str | None]:
    """One web-form submission (page or JSON): honeypot, rate limit, then the normal intake path.
    Returns (outcome, None) or (None, why it was refused)."""
    if fields.get("website"):
        # The honeypot field is hidden from people; a value means a bot. Answer as if accepted.
        return None, "honeypot"
    ip = client_ip(request)
    if form_rate_limited(source, ip):
        return None, "rate"
    item = {key: str(fields.get(key, "") or "")[:2000] for key in FORM_FIELDS}
    item["submission_id"] = item["submission_id"] or uuid.uuid4().hex
    outcome = event_receive(
        source=source,
        body=json.dumps(item, ensure_ascii=False),
        external_id=item["submission_id"],
        headers=kept_headers(request),
        remote_addr=ip,
    )
    return outcome, None


def receive_web_form_json(request: HttpRequest, source: Source, body: bytes) -> HttpResponse:
    items, batch = _items(body)
    if items is None or batch or not isinstance(items[0], dict):
        return error(400, "send one JSON object with name, phone, company, message")
    outcome, refused = form_submit(
        source, {k: v for k, v in items[0].items() if isinstance(v, str | int)}, request
    )
    if refused == "rate":
        return error(429, "too many submissions from this address; try again later")
    # A public form must not tell a stranger whether a phone number is already a customer of ours,
    # so it answers "received" and no lead id, where server-to-server channels get the outcome.
    return JsonResponse({"event_id": outcome.event_id if outcome else None, "status": "received"})


def _wecom(request: HttpRequest, source: Source, body: bytes) -> HttpResponse:
    from salesloop.intake.channels.wecom import wecom_receive

    return wecom_receive(request, source, body)


def _card(request: HttpRequest, source: Source, body: bytes) -> HttpResponse:
    from salesloop.intake.cards import card_receive

    return card_receive(request, source, body)


RECEIVERS: dict[str, Callable[[HttpRequest, Source, bytes], HttpResponse]] = {
    SourceKind.DOUYIN: receive_json_items,
    SourceKind.CALL_400: receive_json_items,
    SourceKind.API: receive_json_items,
    SourceKind.WEB_FORM: receive_web_form_json,
    SourceKind.WECOM: _wecom,
    SourceKind.CARD: _card,
}
