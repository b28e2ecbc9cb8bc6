"""Request signing for channels without a scheme of their own (SPEC C1.1).

    X-Salesloop-Timestamp: <unix seconds>
    X-Salesloop-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>

Requests outside a 5-minute window are refused, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac

from salesloop.core import clock

WINDOW_SECONDS = 300


class SignatureError(Exception):
    pass


def signature_for(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_verify(*, secret: str, timestamp: str | None, signature: str | None, body: bytes) -> None:
    if not secret:
        raise SignatureError("this source has no secret configured")
    if not timestamp or not signature:
        raise SignatureError("missing X-Salesloop-Timestamp or X-Salesloop-Signature header")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureError("X-Salesloop-Timestamp must be unix seconds")
    skew = abs(clock.now().timestamp() - int(timestamp))
    if skew > WINDOW_SECONDS:
        raise SignatureError(f"timestamp is {int(skew)} s away from now (window {WINDOW_SECONDS} s)")
    if not hmac.compare_digest(signature_for(secret, timestamp, body), signature.strip()):
        raise SignatureError("signature does not match")
