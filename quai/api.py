"""The versioned JSON API: ``/api/v1/``, OpenAPI at ``/api/v1/openapi.json``, docs at ``/api/v1/docs``.

Conventions every route follows:
- authentication: a merchant API key (``Authorization: Bearer quai_…``) or a staff / merchant-user session;
  the principal decides the merchant scope (see ``quai.tenants.principal``);
- lists are paginated with ``?limit=&offset=`` and answer ``{"items": [...], "count": N}``;
- filters are plain query parameters named after the field (``?status=active&q=shirt``);
- errors answer ``{"error": {"code", "message", "details"}}`` with a 4xx status, and change nothing.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from quai.catalog.api import router as catalog_router
from quai.core.errors import QuaiError
from quai.inbound.api import router as inbound_router
from quai.inventory.api import router as inventory_router
from quai.tenants.api import router as tenants_router
from quai.tenants.auth import MerchantKeyAuth, SessionAuth
from quai.warehouse.api import router as warehouse_router

api = NinjaAPI(
    title="Quai API",
    version="1",
    description="Warehouse, stock and shop integration API of Quai, the multi-merchant 3PL platform.",
    urls_namespace="api-v1",
    auth=[MerchantKeyAuth(), SessionAuth()],
)


def _error(request: HttpRequest, status: int, code: str, message: str, details: Any = None) -> HttpResponse:
    return api.create_response(
        request, {"error": {"code": code, "message": message, "details": details or {}}}, status=status
    )


@api.exception_handler(QuaiError)
def _quai_error(request: HttpRequest, exc: QuaiError) -> HttpResponse:
    return _error(request, exc.status, exc.code, exc.message, exc.details)


@api.exception_handler(NinjaValidationError)
def _validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    fields = []
    for err in exc.errors:
        loc = [str(part) for part in err.get("loc", ()) if part not in ("body", "payload", "query", "path")]
        fields.append({"field": ".".join(loc), "message": err.get("msg", "")})
    summary = "; ".join(f"{f['field']}: {f['message']}" if f["field"] else f["message"] for f in fields)
    return _error(request, 422, "invalid_input", f"The request is not valid: {summary}", {"fields": fields})


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(request, 401, "unauthenticated", "Authenticate with a merchant API key (Bearer) or a staff session.")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return _error(request, exc.status_code, "http_error", str(exc))


api.add_router("/", tenants_router)
api.add_router("/catalog", catalog_router)
api.add_router("/warehouse", warehouse_router)
api.add_router("/inventory", inventory_router)
api.add_router("/inbound", inbound_router)
