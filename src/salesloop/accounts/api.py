from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema

router = Router()


class RegionOut(Schema):
    id: int
    code: str
    name: str


class MeOut(Schema):
    id: int
    username: str
    display_name: str
    role: str
    region: RegionOut | None
    language: str


@router.get("/me", response=MeOut, summary="Who am I")
def me(request: HttpRequest) -> MeOut:
    user = request.auth  # type: ignore[attr-defined]
    region = user.region
    return MeOut(
        id=user.pk,
        username=user.username,
        display_name=str(user),
        role=user.role,
        region=RegionOut(id=region.pk, code=region.code, name=region.name) if region else None,
        language=getattr(request, "LANGUAGE_CODE", "zh-hans"),
    )
