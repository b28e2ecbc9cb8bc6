from __future__ import annotations

from typing import Any

from salesloop.notify.models import Notification


def notification_send(*, user: Any, kind: str, title: str, body: str = "", link: str = "") -> Notification:
    return Notification.objects.create(user=user, kind=kind, title=title[:200], body=body, link=link)
