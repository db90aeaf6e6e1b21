"""The versioned JSON API: ``/api/v1/``, OpenAPI at ``/api/v1/openapi.json``, docs at ``/api/v1/docs``.

Conventions every route follows:
- authentication: a merchant API key (``Authorization: Bearer quai_…``) or a staff / merchant-user session;
  the principal decides the merchant scope (see ``quai.tenants.principal``);
- lists are paginated with ``?limit=&offset=`` and answer ``{"items": [...], "count": N}``;
- filters are plain query parameters named after the field (``?status=active&q=shirt``);
- errors answer ``{"error": {"code", "message", "details"}}`` with a 4xx status, and change nothing.
"""

from __future__ import annotations

import decimal
import functools
import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import URLPattern, URLResolver, re_path
from django.views.decorators.csrf import csrf_exempt
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

logger = logging.getLogger(__name__)


class QuaiNinjaAPI(NinjaAPI):
    """Ninja, with the two answers it gives outside any route in the error format too.

    - a known path asked with a method it does not serve: 405 ``method_not_allowed`` (``Allow`` lists the methods);
    - any other path under ``/api/v1/``: 404 ``unknown_route`` (rather than Django's HTML page).
    """

    @property
    def urls(self) -> tuple[list[URLResolver | URLPattern], str, str]:
        patterns, app_name, namespace = super().urls
        for pattern in patterns:
            if isinstance(pattern, URLPattern):
                pattern.callback = _json_method_not_allowed(pattern.callback)
        return [*patterns, re_path(r"^.*$", _unknown_route)], app_name, namespace


def _json_method_not_allowed(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)  # keeps csrf_exempt and Ninja's markers
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith("application/json"):
            allowed = response.get("Allow", "")
            answer = _error(
                request,
                405,
                "method_not_allowed",
                f"This path does not answer {request.method}; it answers {allowed}.",
                {"allowed": [method.strip() for method in allowed.split(",") if method.strip()]},
            )
            answer["Allow"] = allowed
            return answer
        return response

    return wrapper


@csrf_exempt
def _unknown_route(request: HttpRequest) -> HttpResponse:
    return _error(
        request,
        404,
        "unknown_route",
        f"There is no {request.method} {request.path} in the API; see /api/v1/docs for the routes.",
        {"path": request.path},
    )


api = QuaiNinjaAPI(
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


_HTTP_ERROR_CODES = {
    400: "malformed_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    429: "throttled",
}


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    message = str(exc)
    code = _HTTP_ERROR_CODES.get(exc.status_code, "http_error")
    if exc.status_code == 403 and "csrf" in message.lower():
        code = "csrf_failed"
        message = "The CSRF check failed: send the csrftoken cookie's value in the X-CSRFToken header."
    return _error(request, exc.status_code, code, message)


@api.exception_handler(MultiPartParserError)
@api.exception_handler(SuspiciousOperation)
def _unreadable_request(request: HttpRequest, exc: Exception) -> HttpResponse:
    # e.g. "Content-Type: multipart/form-data" without a boundary: the session's CSRF check reads the form and fails.
    return _error(
        request,
        400,
        "malformed_request",
        f"The request body cannot be read ({exc}); send JSON with Content-Type: application/json.",
    )


# Safety nets: whatever a route lets slip from Django or the database is still answered in the error format, with
# a 4xx status, and the service's transaction (rolled back by the error) has changed nothing. Each of these is a
# bug to fix where it happens (a schema bound, a service check); they are logged so they get noticed.


@api.exception_handler(Http404)
def _http404(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, "not_found", "Not found: nothing answers to this identifier.")


@api.exception_handler(ObjectDoesNotExist)
def _does_not_exist(request: HttpRequest, exc: ObjectDoesNotExist) -> HttpResponse:
    logger.warning("Unhandled %s on %s %s", type(exc).__qualname__, request.method, request.path, exc_info=exc)
    return _error(request, 404, "not_found", "Not found: something this request names does not exist.")


@api.exception_handler(IntegrityError)
def _integrity_error(request: HttpRequest, exc: IntegrityError) -> HttpResponse:
    if "datatype mismatch" in str(exc):
        # SQLite's word for a number it cannot store (e.g. an offset beyond 2**63): bad input, not a clash.
        return _out_of_range(request, exc)
    logger.warning("Unhandled IntegrityError on %s %s", request.method, request.path, exc_info=exc)
    return _error(
        request,
        409,
        "conflict",
        "The request clashes with what is stored (a duplicate or a broken rule); nothing was changed.",
    )


@api.exception_handler(DataError)
@api.exception_handler(OverflowError)
@api.exception_handler(decimal.InvalidOperation)
def _out_of_range(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.warning("Unhandled %s on %s %s", type(exc).__name__, request.method, request.path, exc_info=exc)
    return _error(
        request,
        422,
        "out_of_range",
        "A value of the request is too large, too long or out of range; nothing was changed.",
    )


@api.exception_handler(DjangoValidationError)
def _django_validation_error(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    if hasattr(exc, "error_dict"):
        fields = [{"field": field, "message": " ".join(messages)} for field, messages in exc.message_dict.items()]
    else:
        fields = [{"field": "", "message": message} for message in exc.messages]
    summary = "; ".join(f"{f['field']}: {f['message']}" if f["field"] else f["message"] for f in fields)
    return _error(request, 422, "invalid_input", f"The request is not valid: {summary}", {"fields": fields})


api.add_router("/", tenants_router)
api.add_router("/catalog", catalog_router)
api.add_router("/warehouse", warehouse_router)
api.add_router("/inventory", inventory_router)
api.add_router("/inbound", inbound_router)
