"""The REST API (`/api/v1`, OpenAPI at `/api/v1/openapi.json`, docs at `/api/v1/docs`).

Endpoints are thin (STYLE.md 2): parse, check permission, call the same services and selectors the
pages use. Errors are JSON and name the field: `{"detail": [{"loc": [...], "msg": "..."}]}`.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.renderers import JSONRenderer
from ninja.security import HttpBearer, SessionAuth

from salesloop.accounts.services import token_authenticate
from salesloop.crm.selectors import FilterError
from salesloop.pipeline.services import StageMoveRefused


class UnicodeJSONRenderer(JSONRenderer):
    json_dumps_params = {"ensure_ascii": False}  # Chinese stays readable in responses


class BearerAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = token_authenticate(token)
        if user is not None:
            request.user = user
        return user


api = NinjaAPI(
    title="salesloop API",
    version="1",
    description="Sales management for B2B teams. Authenticate with `Authorization: Bearer <token>` "
    "(`salesloop token create USER`) or a browser session (with CSRF).",
    urls_namespace="api-v1",
    auth=[BearerAuth(), SessionAuth()],
    renderer=UnicodeJSONRenderer(),
)


def field_errors(exc: DjangoValidationError, location: str = "body") -> list[dict[str, Any]]:
    if hasattr(exc, "error_dict"):
        return [
            {"loc": [location, field], "msg": " ".join(str(m) for e in errors for m in e.messages)}
            for field, errors in exc.error_dict.items()
        ]
    return [{"loc": [location], "msg": " ".join(exc.messages)}]


@api.exception_handler(DjangoValidationError)
def _validation_error(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    return api.create_response(request, {"detail": field_errors(exc)}, status=422)


@api.exception_handler(FilterError)
def _filter_error(request: HttpRequest, exc: FilterError) -> HttpResponse:
    return api.create_response(
        request, {"detail": [{"loc": ["query", exc.field], "msg": str(exc)}]}, status=422
    )


@api.exception_handler(StageMoveRefused)
def _move_refused(request: HttpRequest, exc: StageMoveRefused) -> HttpResponse:
    problems = exc.explanation["problems"]
    detail = [{"loc": ["body", p["field"]], "msg": p["message"], "type": p["code"]} for p in problems]
    return api.create_response(request, {"detail": detail, "explanation": exc.explanation}, status=422)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return api.create_response(request, {"detail": "Not found."}, status=404)


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc) or "Forbidden."}, status=403)


def _routers() -> None:
    from salesloop.accounts.api import router as accounts_router
    from salesloop.core.api import router as core_router
    from salesloop.crm.api import contacts_router, customers_router, leads_router
    from salesloop.engagement.api import lead_router as engagement_lead_router
    from salesloop.engagement.api import router as engagement_router
    from salesloop.engagement.checkin_api import router as checkin_router
    from salesloop.engagement.ocr.api import router as evidence_ocr_router
    from salesloop.health.api import customer_router as customer_health_router
    from salesloop.health.api import lead_router as lead_health_router
    from salesloop.health.api import router as health_router
    from salesloop.insights.api import router as insights_router
    from salesloop.insights.indicators_api import router as indicators_router
    from salesloop.intake.api import merge_router
    from salesloop.intake.api import router as intake_router
    from salesloop.intake.card_api import router as card_router
    from salesloop.intake.imports.api import router as imports_router
    from salesloop.notify.api import router as alerts_router
    from salesloop.pipeline.api import bulk_router as bulk_move_router
    from salesloop.pipeline.api import router as pipeline_router
    from salesloop.pipeline.editor_api import router as pipeline_editor_router
    from salesloop.routing.api import lead_router as assignment_router
    from salesloop.routing.api import router as routing_router
    from salesloop.routing.reps_api import router as reps_router
    from salesloop.routing.sandbox_api import router as sandbox_router
    from salesloop.workspace.api import export_router as workspace_export_router
    from salesloop.workspace.api import router as custom_fields_router
    from salesloop.workspace.openapi import install as custom_fields_openapi_install

    api.add_router("", accounts_router, tags=["me"])
    api.add_router("/leads", bulk_move_router, tags=["leads"])  # before /leads/{lead_id}
    api.add_router("/leads", leads_router, tags=["leads"])
    api.add_router("/leads", pipeline_router, tags=["leads"])
    api.add_router("/pipelines", pipeline_editor_router, tags=["pipelines"])
    api.add_router("/leads", merge_router, tags=["leads"])
    api.add_router("/intake/cards", card_router, tags=["cards"])
    api.add_router("/intake", intake_router, tags=["intake"])
    api.add_router("/imports", imports_router, tags=["imports"])
    api.add_router("/customers", customers_router, tags=["customers"])
    api.add_router("/contacts", contacts_router, tags=["contacts"])
    api.add_router("/explanations", core_router, tags=["explanations"])
    api.add_router("/leads", assignment_router, tags=["routing"])
    api.add_router("/routing", routing_router, tags=["routing"])
    api.add_router("/routing", sandbox_router, tags=["routing"])
    api.add_router("/routing", reps_router, tags=["routing"])
    api.add_router("/custom-fields", custom_fields_router, tags=["custom fields"])
    api.add_router("/exports", workspace_export_router, tags=["leads"])
    custom_fields_openapi_install(api)  # custom_fields typed from the definitions, per request (C10.1)
    api.add_router("/leads", lead_health_router, tags=["health"])
    api.add_router("/customers", customer_health_router, tags=["health"])
    api.add_router("/health", health_router, tags=["health"])
    api.add_router("/leads", engagement_lead_router, tags=["engagement"])
    api.add_router("", engagement_router, tags=["engagement"])
    api.add_router("/checkins", checkin_router, tags=["check-ins"])  # C4
    api.add_router("", evidence_ocr_router, tags=["engagement"])
    api.add_router("/alerts", alerts_router, tags=["alerts"])
    api.add_router("/insights", insights_router, tags=["insights"])
    api.add_router("/insights/indicators", indicators_router, tags=["insights"])


_routers()
