from __future__ import annotations

from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the cheapest JSON answer the server gives (benchmarks compare intake against it)."""
    return JsonResponse({"ok": True})
