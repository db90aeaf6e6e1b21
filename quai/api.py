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
import hashlib
import inspect
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import Resolver404, ResolverMatch, URLPattern, URLResolver, re_path
from django.urls.resolvers import RoutePattern
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.openapi.schema import OpenAPISchema
from ninja.operation import Operation
from ninja.parser import Parser

from quai.analytics.api import router as analytics_router
from quai.campaigns.api import router as campaigns_router
from quai.catalog.api import router as catalog_router
from quai.core.batching import Overloaded
from quai.core.errors import QuaiError, ValidationFailed
from quai.fulfillment.api import router as fulfillment_router
from quai.inbound.api import router as inbound_router
from quai.integrations.api import router as integrations_router
from quai.integrations.api import shops_router
from quai.inventory.api import router as inventory_router
from quai.labor.api import router as labor_router
from quai.orders.api import router as orders_router
from quai.packing.api import router as packing_router
from quai.promise.api import router as promise_router
from quai.service.api import router as service_router
from quai.shipping.api import router as shipping_router
from quai.tenants import services as tenants_services
from quai.tenants.api import router as tenants_router
from quai.tenants.auth import MerchantKeyAuth, SessionAuth, principal_of
from quai.tenants.throttle import AuthThrottled, auth_failure_record, auth_throttle_check, client_address
from quai.warehouse.api import router as warehouse_router

logger = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class UnsupportedMediaType(QuaiError):
    status = 415
    code = "unsupported_media_type"


# --- Reading request bodies ------------------------------------------------------------------------------------


def _field_name(location: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in location)


def _unstorable_strings(value: Any, location: tuple[Any, ...] = ()) -> Iterator[tuple[str, str]]:
    """(field, reason) for every string no database can store: a lone surrogate (not UTF-8 at all) or a NUL."""
    if isinstance(value, str):
        if "\x00" in value:
            yield _field_name(location), _("Must not contain the NUL character (\\u0000).")
        elif any("\ud800" <= char <= "\udfff" for char in value):
            yield (
                _field_name(location),
                _("Must be valid Unicode: a lone surrogate (\\ud800-\\udfff) is not a character."),
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _unstorable_strings(key, (*location, key))
            yield from _unstorable_strings(item, (*location, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unstorable_strings(item, (*location, index))


# A body holding neither a backslash-u escape nor a NUL byte nor the lead byte of a UTF-8-encoded surrogate (0xED,
# which json.loads decodes with "surrogatepass") is UTF-8 and parses to strings that hold neither: nothing to walk.
_UNSTORABLE_MARKS = (b"\\u", b"\x00", b"\xed")


def _may_hold_unstorable(body: bytes) -> bool:
    return any(mark in body for mark in _UNSTORABLE_MARKS)


def _refuse_unstorable(data: Any) -> None:
    fields = [{"field": field, "message": message} for field, message in _unstorable_strings(data)]
    if fields:
        summary = "; ".join(f"{f['field']}: {f['message']}" if f["field"] else f["message"] for f in fields)
        raise ValidationFailed(
            _("The request is not valid: %(summary)s") % {"summary": summary},
            code="invalid_input",
            details={"fields": fields},
        )


class QuaiParser(Parser):
    r"""JSON only, and only strings a database can store.

    Python's JSON reader accepts ``"\ud800"`` (a lone surrogate) and ``"\u0000"``; neither can be written to
    PostgreSQL (nor rendered back as UTF-8), so they are refused here with the field they were found in, before any
    schema or service sees them. Ninja wraps what this raises in a 400; the ``HttpError`` handler below unwraps it.
    """

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        content_type = (request.content_type or "").lower()
        if content_type != "application/json" and not (
            content_type.startswith("application/") and content_type.endswith("+json")
        ):
            raise UnsupportedMediaType(
                _("This route reads JSON: send the body with Content-Type: application/json (got %(type)s).")
                % {"type": content_type or _("none")},
                details={"content_type": content_type},
            )
        body = request.body
        data = json.loads(body)
        if _may_hold_unstorable(body):
            _refuse_unstorable(data)
        return data

    def parse_querydict(self, data: MultiValueDict, list_fields: list[str], request: HttpRequest) -> dict[str, Any]:
        result = super().parse_querydict(data, list_fields, request)
        _refuse_unstorable(result)
        return result


# --- Idempotent writes ------------------------------------------------------------------------------------------
# One mechanism for every write of the API, in two parts that Ninja lets us put around every operation:
# - around the handler (after authentication and validation, so a malformed request is never remembered): claim
#   the key for the principal's scope, or answer the stored response;
# - around the whole operation (once the answer is rendered): keep the answer, or release the claim on a 5xx.

IDEMPOTENCY_HEADER = "Idempotency-Key"
_IDEMPOTENCY_META = "HTTP_IDEMPOTENCY_KEY"
_IDEMPOTENCY_KEY = re.compile(r"^[\x20-\x7e]{1,255}$")


def _request_fingerprint(request: HttpRequest) -> str:
    """The same request, whatever the key order or spacing of its JSON: method, path, query and body."""
    body: bytes = request.body
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    except ValueError:
        canonical = body
    digest = hashlib.sha256()
    for part in (request.method or "", request.path, request.META.get("QUERY_STRING", "")):
        digest.update(part.encode() + b"\n")
    digest.update(canonical)
    return digest.hexdigest()


def _idempotent_handler(handler: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(handler)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        # From META (what ``request.headers`` is built from, whole, for one read): the same value, less CPU.
        key = request.META.get(_IDEMPOTENCY_META)
        if request.method not in WRITE_METHODS or key is None:
            return handler(request, *args, **kwargs)
        if not _IDEMPOTENCY_KEY.match(key):
            raise ValidationFailed(
                _("The Idempotency-Key header must be 1 to 255 printable ASCII characters."),
                code="invalid_idempotency_key",
                details={
                    "fields": [{"field": IDEMPOTENCY_HEADER, "message": _("1 to 255 printable ASCII characters.")}]
                },
            )
        claim = tenants_services.idempotency_claim(
            scope=principal_of(request).idempotency_scope,
            key=key,
            fingerprint=_request_fingerprint(request),
            method=request.method or "",
            path=request.get_full_path(),
        )
        if claim.replay:
            record = claim.record
            response = HttpResponse(
                bytes(record.response_body), status=record.response_status, content_type=record.response_content_type
            )
            response["Idempotent-Replayed"] = "true"
            return response
        request._quai_idempotency_record = claim.record  # type: ignore[attr-defined]
        return handler(request, *args, **kwargs)

    return wrapper


def _idempotent_operation(run: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(run)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            response = run(request, *args, **kwargs)
        except BaseException:
            record = getattr(request, "_quai_idempotency_record", None)
            if record is not None:
                tenants_services.idempotency_release(record=record)
            raise
        record = getattr(request, "_quai_idempotency_record", None)
        if record is not None:
            if response.status_code >= 500 or response.streaming:
                tenants_services.idempotency_release(record=record)
            else:
                tenants_services.idempotency_complete(
                    record=record,
                    status=response.status_code,
                    content_type=response.get("Content-Type", ""),
                    body=response.content,
                )
        return response

    return wrapper


# --- OpenAPI: the error answers and the Idempotency-Key header of every operation -----------------------------

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "Stable machine-readable code (docs/ERRORS.md lists them)."},
                "message": {"type": "string", "description": "For a person, in the request's language."},
                "details": {"type": "object", "additionalProperties": True},
            },
        }
    },
}

_ERROR_DESCRIPTIONS = {
    400: "Malformed request: the body is not JSON (`malformed_request`).",
    401: "No credentials, or a key that is not valid or revoked (`unauthenticated`, `invalid_api_key`).",
    403: "Not allowed to the principal (`forbidden`, `staff_only`, …) or, for a session, `csrf_failed`.",
    404: "Nothing with this identifier for this principal (`<entity>_not_found`); another merchant's rows alike.",
    409: "Clashes with the current state: a duplicate, a stale version, a state that forbids it, "
    "`idempotency_key_reused`, `idempotency_key_in_use`.",
    415: "The body is not JSON (`unsupported_media_type`).",
    422: "Invalid input (`invalid_input`, with `details.fields`) or a broken business rule.",
    429: "Too many failed authentications (`throttled`); see the Retry-After header.",
}


def _error_statuses(operation: Operation, details: dict[str, Any], path: str) -> list[int]:
    methods = {method.upper() for method in operation.methods}
    writes = bool(methods & WRITE_METHODS)
    has_body = "requestBody" in details
    statuses = []
    if has_body:
        statuses += [400, 415]
    if operation.auth_callbacks:
        statuses += [401, 429]
    handler = inspect.unwrap(operation.view_func)
    try:
        source = inspect.getsource(handler)
    except (OSError, TypeError):
        source = ""
    if writes or "require_staff" in source or "Forbidden" in source:
        statuses.append(403)
    if "{" in path:
        statuses.append(404)
    if writes:
        statuses.append(409)
    if writes or details.get("parameters"):
        statuses.append(422)
    return sorted(set(statuses))


class QuaiOpenAPISchema(OpenAPISchema):
    def get_paths(self) -> dict[str, Any]:
        self._paths_by_operation: dict[int, str] = {}
        for bound_router in self.api._get_bound_routers():
            for path, path_view in bound_router.path_operations.items():
                for operation in path_view.operations:
                    self._paths_by_operation[id(operation)] = path
        return super().get_paths()

    def operation_details(self, operation: Operation) -> dict[str, Any]:
        details = super().operation_details(operation)
        responses = details["responses"]
        error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for status in _error_statuses(operation, details, self._paths_by_operation.get(id(operation), "")):
            responses.setdefault(status, {"description": _ERROR_DESCRIPTIONS[status], "content": error_content})
        if {method.upper() for method in operation.methods} & WRITE_METHODS:
            details["parameters"] = [
                *details.get("parameters", []),
                {
                    "in": "header",
                    "name": IDEMPOTENCY_HEADER,
                    "required": False,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
                    "description": (
                        "Makes a retry safe: the same key with the same request (same principal) answers the first "
                        "answer again, with `Idempotent-Replayed: true`, for 24 hours; with another request, 409 "
                        "`idempotency_key_reused`; while the first still runs, 409 `idempotency_key_in_use`. "
                        "5xx answers are not kept."
                    ),
                },
            ]
        return details

    def get_components(self) -> dict[str, Any]:
        self.schemas["Error"] = ERROR_SCHEMA
        return super().get_components()


class QuaiNinjaAPI(NinjaAPI):
    """Ninja, with the two answers it gives outside any route in the error format too, and our OpenAPI additions.

    - a known path asked with a method it does not serve: 405 ``method_not_allowed`` (``Allow`` lists the methods);
    - any other path under ``/api/v1/``: 404 ``unknown_route`` (rather than Django's HTML page);
    - every operation documents its error answers (one shared ``Error`` schema) and every write its
      ``Idempotency-Key`` header.
    """

    @property
    def urls(self) -> tuple[list[URLResolver | URLPattern], str, str]:
        patterns, app_name, namespace = super().urls
        for pattern in patterns:
            if isinstance(pattern, URLPattern):
                pattern.callback = _json_method_not_allowed(pattern.callback)
        return [RoutesByFirstSegment([*patterns, re_path(r"^.*$", _unknown_route)])], app_name, namespace

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        return QuaiOpenAPISchema(api=self, path_prefix=path_prefix)


class RoutesByFirstSegment(URLResolver):
    """The API's routes, resolved as Django resolves a list of them — the first route that matches, in order — but
    trying only the routes that can match: those whose first segment is the path's (``orders`` for ``orders``,
    ``orders/batch``, ``orders/12``), and those whose first segment is not a plain word (a parameter, a regular
    expression: the catch-all), in their order. A route whose first segment is another word cannot match the path,
    so skipping it changes no answer; it saves trying the ~70 routes before ``orders`` one by one, ~10 % of an
    order's CPU in the request thread. A match's ``tried`` holds only the route that matched."""

    def __init__(self, patterns: list[URLPattern | URLResolver]) -> None:
        super().__init__(RoutePattern(""), patterns)
        firsts = [_first_segment(pattern) for pattern in patterns]
        self._anywhere = [pattern for pattern, first in zip(patterns, firsts, strict=True) if first is None]
        self._by_segment = {
            segment: [pattern for pattern, first in zip(patterns, firsts, strict=True) if first in (segment, None)]
            for segment in {first for first in firsts if first is not None}
        }

    def resolve(self, path: Any) -> ResolverMatch:
        path = str(path)
        candidates = self._by_segment.get(path.split("/", 1)[0], self._anywhere)
        for pattern in candidates:
            try:
                found = pattern.resolve(path)
            except Resolver404:
                continue
            if found:
                # What URLResolver.resolve builds from its sub-match, for a resolver of route "" and no kwargs.
                return ResolverMatch(
                    found.func,
                    found.args,
                    dict(found.kwargs),
                    found.url_name,
                    [self.app_name, *found.app_names],
                    [self.namespace, *found.namespaces],
                    found.route,
                    [[pattern]],
                    captured_kwargs=found.captured_kwargs,  # type: ignore[attr-defined]
                    extra_kwargs={**found.extra_kwargs},  # type: ignore[attr-defined]
                )
        raise Resolver404({"tried": [[pattern] for pattern in candidates], "path": path})


def _first_segment(pattern: URLPattern | URLResolver) -> str | None:
    """The plain word a route's paths all start with (``orders`` of ``orders/<order_id>``), else None."""
    if not isinstance(pattern, URLPattern) or not isinstance(pattern.pattern, RoutePattern):
        return None
    first = str(pattern.pattern).split("/", 1)[0]
    return first if first and "<" not in first else None


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
                _("This path does not answer %(method)s; it answers %(allowed)s.")
                % {"method": request.method, "allowed": allowed},
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
        _("There is no %(method)s %(path)s in the API; see /api/v1/docs for the routes.")
        % {"method": request.method, "path": request.path},
        {"path": request.path},
    )


api = QuaiNinjaAPI(
    title="Quai API",
    version="1",
    description=(
        "Warehouse, stock and shop integration API of Quai, the multi-merchant 3PL platform.\n\n"
        "**Authentication**: `Authorization: Bearer quai_…` (a merchant's API key) or a staff or merchant-user "
        "session (with its CSRF token on writes). Failed authentications are throttled per key prefix and per "
        "address: past 10 a minute, 429 `throttled` with `Retry-After`.\n\n"
        "**API keys**: a merchant (its portal users, or one of its keys) may create keys, up to 20 live keys per "
        "merchant (409 `api_key_limit_reached`). A key created by another key is revoked with it, and so is "
        "everything it created in turn.\n\n"
        "**Idempotent writes**: every POST, PUT, PATCH and DELETE takes an `Idempotency-Key` header (1 to 255 "
        "printable characters): a retry with the same key and body answers the first answer again for 24 hours.\n\n"
        '**Errors**: `{"error": {"code", "message", "details"}}` with a 4xx status; the codes are listed in '
        "docs/ERRORS.md. Messages follow `Accept-Language` (en, fr). Request bodies are JSON (415 otherwise); "
        'integers and booleans are strict (`"1"` or `true` for an integer is 422).'
    ),
    urls_namespace="api-v1",
    auth=[MerchantKeyAuth(), SessionAuth()],
    parser=QuaiParser(),
)
api.add_decorator(_idempotent_handler, mode="operation")
api.add_decorator(_idempotent_operation, mode="view")


def _error(request: HttpRequest, status: int, code: str, message: str, details: Any = None) -> HttpResponse:
    return api.create_response(
        request, {"error": {"code": code, "message": message, "details": details or {}}}, status=status
    )


@api.exception_handler(QuaiError)
def _quai_error(request: HttpRequest, exc: QuaiError) -> HttpResponse:
    response = _error(request, exc.status, exc.code, exc.message, exc.details)
    if isinstance(exc, AuthThrottled | Overloaded):
        response["Retry-After"] = str(exc.retry_after)
    return response


# Pydantic's messages are English; these are the ones our schemas can produce, in the request's language. A type
# not listed keeps pydantic's own message (e.g. a custom validator's, already written for a person).
_VALIDATION_MESSAGES: dict[str, Any] = {
    "missing": gettext_lazy("This field is required."),
    "string_type": gettext_lazy("Must be a string."),
    "string_too_short": gettext_lazy("Must have at least %(min_length)s character(s)."),
    "string_too_long": gettext_lazy("Must have at most %(max_length)s character(s)."),
    "string_pattern_mismatch": gettext_lazy("Does not have the expected form (%(pattern)s)."),
    "int_type": gettext_lazy("Must be an integer (a JSON number without quotes)."),
    "int_parsing": gettext_lazy("Must be an integer."),
    "int_from_float": gettext_lazy("Must be a whole number."),
    "bool_type": gettext_lazy("Must be true or false."),
    "bool_parsing": gettext_lazy("Must be true or false."),
    "float_type": gettext_lazy("Must be a number."),
    "float_parsing": gettext_lazy("Must be a number."),
    "decimal_type": gettext_lazy("Must be a decimal number."),
    "finite_number": gettext_lazy("Must be a finite number."),
    "decimal_parsing": gettext_lazy("Must be a decimal number."),
    "decimal_max_digits": gettext_lazy("Must have at most %(max_digits)s digits."),
    "decimal_max_places": gettext_lazy("Must have at most %(decimal_places)s decimal places."),
    "decimal_whole_digits": gettext_lazy("Must have at most %(whole_digits)s digits before the decimal point."),
    "greater_than": gettext_lazy("Must be greater than %(gt)s."),
    "greater_than_equal": gettext_lazy("Must be at least %(ge)s."),
    "less_than": gettext_lazy("Must be less than %(lt)s."),
    "less_than_equal": gettext_lazy("Must be at most %(le)s."),
    "too_short": gettext_lazy("Must have at least %(min_length)s item(s)."),
    "too_long": gettext_lazy("Must have at most %(max_length)s item(s)."),
    "list_type": gettext_lazy("Must be a list."),
    "dict_type": gettext_lazy("Must be an object."),
    "model_type": gettext_lazy("Must be an object."),
    "model_attributes_type": gettext_lazy("Must be an object."),
    "enum": gettext_lazy("Must be one of: %(expected)s."),
    "literal_error": gettext_lazy("Must be one of: %(expected)s."),
    "date_type": gettext_lazy("Must be a date (YYYY-MM-DD)."),
    "date_parsing": gettext_lazy("Must be a date (YYYY-MM-DD)."),
    "date_from_datetime_parsing": gettext_lazy("Must be a date (YYYY-MM-DD)."),
    "date_from_datetime_inexact": gettext_lazy("Must be a date (YYYY-MM-DD)."),
    "datetime_type": gettext_lazy("Must be a date and time (ISO 8601)."),
    "datetime_parsing": gettext_lazy("Must be a date and time (ISO 8601)."),
    "datetime_from_date_parsing": gettext_lazy("Must be a date and time (ISO 8601)."),
    "extra_forbidden": gettext_lazy("Unknown field."),
}


def _validation_message(err: dict[str, Any]) -> str:
    template = _VALIDATION_MESSAGES.get(str(err.get("type", "")))
    if template is None:
        return str(err.get("msg", ""))
    ctx = dict(err.get("ctx") or {})
    if isinstance(ctx.get("expected"), str):
        # Pydantic joins the last two values with an English "or": a comma says it in every language.
        ctx["expected"] = ctx["expected"].replace("' or '", "', '")
    try:
        return str(template) % ctx
    except (KeyError, TypeError, ValueError):
        return str(err.get("msg", ""))


_REQUEST_PARTS = ("body", "query", "path", "header", "cookie", "form", "file")


@api.exception_handler(NinjaValidationError)
def _validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    fields = []
    for err in exc.errors:
        # ("body", <the body's parameter>, field…), ("query", name), ("path", name): the field is what follows.
        # Only the head is dropped, so a field named "body" (a ticket's text) is still named.
        loc = list(err.get("loc", ()))
        if loc and loc[0] in _REQUEST_PARTS:
            loc = loc[2:] if loc[0] == "body" else loc[1:]
        loc = [str(part) for part in loc]
        fields.append({"field": ".".join(loc), "message": _validation_message(err)})
    summary = "; ".join(f"{f['field']}: {f['message']}" if f["field"] else f["message"] for f in fields)
    return _error(
        request,
        422,
        "invalid_input",
        _("The request is not valid: %(summary)s") % {"summary": summary},
        {"fields": fields},
    )


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    # No credentials at all (or an Authorization header that is not "Bearer …"): a failure like a wrong key.
    address = client_address(request)
    try:
        auth_throttle_check(address=address)
    except AuthThrottled as throttled:
        return _quai_error(request, throttled)
    auth_failure_record(address=address)
    return _error(
        request, 401, "unauthenticated", _("Authenticate with a merchant API key (Bearer) or a staff session.")
    )


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
    if isinstance(exc.__cause__, QuaiError):
        # Raised while reading the body (QuaiParser); Ninja wraps whatever the parser raises in a 400.
        return _quai_error(request, exc.__cause__)
    message = str(exc)
    code = _HTTP_ERROR_CODES.get(exc.status_code, "http_error")
    if exc.status_code == 400:
        message = _("The request body cannot be read: send JSON with Content-Type: application/json.")
    if exc.status_code == 403 and "csrf" in message.lower():
        code = "csrf_failed"
        message = _("The CSRF check failed: send the csrftoken cookie's value in the X-CSRFToken header.")
    return _error(request, exc.status_code, code, message)


@api.exception_handler(MultiPartParserError)
@api.exception_handler(SuspiciousOperation)
def _unreadable_request(request: HttpRequest, exc: Exception) -> HttpResponse:
    # e.g. "Content-Type: multipart/form-data" without a boundary: the session's CSRF check reads the form and fails.
    return _error(
        request,
        400,
        "malformed_request",
        _("The request body cannot be read (%(reason)s); send JSON with Content-Type: application/json.")
        % {"reason": exc},
    )


# Safety nets: whatever a route lets slip from Django or the database is still answered in the error format, with
# a 4xx status, and the service's transaction (rolled back by the error) has changed nothing. Each of these is a
# bug to fix where it happens (a schema bound, a service check); they are logged so they get noticed.


@api.exception_handler(Http404)
def _http404(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, "not_found", _("Not found: nothing answers to this identifier."))


@api.exception_handler(ObjectDoesNotExist)
def _does_not_exist(request: HttpRequest, exc: ObjectDoesNotExist) -> HttpResponse:
    logger.warning("Unhandled %s on %s %s", type(exc).__qualname__, request.method, request.path, exc_info=exc)
    return _error(request, 404, "not_found", _("Not found: something this request names does not exist."))


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
        _("The request clashes with what is stored (a duplicate or a broken rule); nothing was changed."),
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
        _("A value of the request is too large, too long or out of range; nothing was changed."),
    )


@api.exception_handler(DjangoValidationError)
def _django_validation_error(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    if hasattr(exc, "error_dict"):
        fields = [{"field": field, "message": " ".join(messages)} for field, messages in exc.message_dict.items()]
    else:
        fields = [{"field": "", "message": message} for message in exc.messages]
    summary = "; ".join(f"{f['field']}: {f['message']}" if f["field"] else f["message"] for f in fields)
    return _error(
        request,
        422,
        "invalid_input",
        _("The request is not valid: %(summary)s") % {"summary": summary},
        {"fields": fields},
    )


api.add_router("/", tenants_router)
api.add_router("/catalog", catalog_router)
api.add_router("/warehouse", warehouse_router)
api.add_router("/inventory", inventory_router)
api.add_router("/inbound", inbound_router)
api.add_router("/orders", orders_router)
api.add_router("/webhooks", integrations_router)
api.add_router("/shops", shops_router)
api.add_router("/promise", promise_router)
api.add_router("/fulfilment", fulfillment_router)
api.add_router("/packing", packing_router)
api.add_router("/shipping", shipping_router)
api.add_router("/service", service_router)
api.add_router("/labor", labor_router)
api.add_router("/campaigns", campaigns_router)
api.add_router("/analytics", analytics_router)
