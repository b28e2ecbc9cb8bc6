"""Check-in test helpers: a real small JPEG, an upload made through the service, a check-in."""

from __future__ import annotations

import io
import uuid
from typing import Any

from salesloop.engagement import checkin_services as services
from salesloop.engagement.checkin_models import Checkin, EvidenceUpload


def jpeg_bytes(colour: tuple[int, int, int] = (200, 60, 40), size: tuple[int, int] = (64, 48)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def uploaded(
    actor: Any, data: bytes | None = None, kind: str = "site_photo", name: str = "现场.jpg"
) -> EvidenceUpload:
    data = data if data is not None else jpeg_bytes()
    upload, _ = services.evidence_upload_start(
        actor=actor, client_key=uuid.uuid4().hex, kind=kind, file_name=name, size=len(data)
    )
    return services.evidence_upload_chunk(actor=actor, upload=upload, offset=0, data=data)


def checkin_make(actor: Any, lead: Any, **extra: Any) -> Checkin:
    checkin, _ = services.checkin_record(
        actor=actor,
        lead=lead,
        action_type=extra.pop("action_type", "visit"),
        result_type=extra.pop("result_type", "progressed"),
        result_text=extra.pop("result_text", "见了IT总监，约了下周二演示"),
        client_key=extra.pop("client_key", uuid.uuid4().hex),
        **extra,
    )
    return checkin
