from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from salesloop.core import explanations

router = Router()


@router.get("/schemas", summary="The JSON schema of every explanation kind")
def explanation_schemas(request: HttpRequest) -> dict[str, Any]:
    return {entry.kind: explanations.json_schema(entry.kind) for entry in explanations.kinds()}
