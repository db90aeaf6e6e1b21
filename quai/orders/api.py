"""Orders HTTP API: intake, reads with their timeline, and the steps a shop or an agent asks (cancel, hold, address).

Thin: each handler parses, calls one service and answers the order as ``quai.orders.selectors`` reads it. Every
route reads through the principal's scope, so another merchant's order answers ``order_not_found``.

Intake goes through ``quai.orders.services.intake_batched`` (orders written in shared commits, docs/INTAKE.md); a
merchant key's merchant is taken from the key the auth already holds (cached per process), not read again.
"""

# No "from __future__ import annotations" here: Ninja reads the query parameters' types (a date) at import, and
# @paginate's wrapper does not carry this module's names for it to resolve strings.
from datetime import date
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema
from ninja.pagination import paginate
from ninja.renderers import JSONRenderer
from pydantic import StrictInt

from quai.core.errors import QuaiError
from quai.orders import selectors, services
from quai.orders.models import Order
from quai.orders.schemas import (
    BodyIn,
    OrderAddressIn,
    OrderCancelIn,
    OrderCreateIn,
    OrderDetailOut,
    OrderHoldIn,
    OrderLineOut,
    OrderOut,
    OrderReleaseHoldIn,
    TimelineEntryOut,
    schema_dumper,
)
from quai.orders.services.intake import OrderCreated
from quai.orders.services.intake_batched import BATCH_MAX_ORDERS, order_intake, order_intake_many
from quai.tenants.auth import principal_of
from quai.tenants.principal import Principal

router = Router(tags=["orders"])
_RENDERER = JSONRenderer()
_CONTENT_TYPE = f"{_RENDERER.media_type}; charset={_RENDERER.charset}"


class OrderBatchIn(BodyIn):
    merchant_id: StrictInt | None = Field(None, description="Staff only: the merchant the orders are for.")
    orders: list[OrderCreateIn] = Field(..., min_length=1, max_length=BATCH_MAX_ORDERS)


class OrderBatchResultOut(Schema):
    index: int = Field(..., description="The order's position in the request, from 0.")
    status: int = Field(..., description="What POST /orders would have answered for it: 201, 200, or an error's.")
    order: OrderOut | None = None
    error: dict[str, Any] | None = Field(None, description="The error's code, message and details, as elsewhere.")


class OrderBatchOut(Schema):
    results: list[OrderBatchResultOut]


def _render(request: HttpRequest, dumped: Any, status: int) -> HttpResponse:
    """An answer already dumped (``schema_dumper``), rendered as the API renders every answer (its renderer is
    Ninja's JSON one; a test compares the bytes with a read's)."""
    content = _RENDERER.render(request, dumped, response_status=status)
    return HttpResponse(content, status=status, content_type=_CONTENT_TYPE)


def _answer(request: HttpRequest, schema: type[Schema], data: Any, status: int) -> HttpResponse:
    """``data`` answered as the route's response model would answer it, without running its validation over
    every attribute (``schema_dumper``): the intake routes' answers, a quarter of their CPU before."""
    return _render(request, schema_dumper(schema)(data), status)


# An order's detail is OrderOut's fields, then its lines and its timeline (a test keeps OrderDetailOut so).
_ORDER_DUMP = schema_dumper(OrderOut)
_LINE_DUMP = schema_dumper(OrderLineOut)
_STEP_DUMP = schema_dumper(TimelineEntryOut)


def _created_answer(result: OrderCreated) -> dict[str, Any]:
    """``OrderDetailOut`` of an order intake just wrote, dumped from the rows it wrote (``result.lines`` and
    ``.timeline``): no read, and not even the related manager and queryset an order's ``lines`` would make."""
    answer = _ORDER_DUMP(result.order)
    answer["lines"] = [_LINE_DUMP(line) for line in sorted(result.lines, key=lambda line: line.position)]
    answer["timeline"] = [_STEP_DUMP(step) for step in result.timeline]
    return answer


def _merchant(principal: Principal, merchant_id: int | None) -> Any:
    """A merchant key acts for its own merchant, known from the (cached) key: its id, no query. Staff name one."""
    if principal.merchant_id is not None and merchant_id in (None, principal.merchant_id):
        return principal.merchant_id
    return principal.merchant_for(merchant_id)


def _detail(request: HttpRequest, order_id: int) -> Order:
    return selectors.order_detail(scope=principal_of(request).scope(), order_id=order_id)


@router.post("", response={200: OrderDetailOut, 201: OrderDetailOut})
def order_create(request: HttpRequest, payload: OrderCreateIn) -> HttpResponse:
    """Accept one order. The same order sent again (same channel and external id, same contents) answers 200 with
    the order already stored; other contents under that external id answer 409 ``order_external_id_reused``."""
    principal = principal_of(request)
    merchant = _merchant(principal, payload.merchant_id)
    result = order_intake(merchant=merchant, data=payload.dict(exclude={"merchant_id"}), actor=principal)
    if result.created:  # answered from what intake just wrote, not read again: three queries per order saved
        return _render(request, _created_answer(result), 201)
    return _answer(request, OrderDetailOut, _detail(request, result.order.pk), 200)  # a resend: read like any detail


@router.post("/batch", response=OrderBatchOut)
def order_create_batch(request: HttpRequest, payload: OrderBatchIn) -> HttpResponse:
    """Accept up to 500 orders in one request. Each gets its own result, in the request's order: 201 (created),
    200 (the same order already stored) or its own error; one order's refusal never stops the others. Answered
    once every accepted order is durably written."""
    principal = principal_of(request)
    merchant = _merchant(principal, payload.merchant_id)
    orders = [order.dict(exclude={"merchant_id"}) for order in payload.orders]
    results: list[dict[str, Any]] = []
    for index, outcome in enumerate(order_intake_many(merchant=merchant, orders=orders, actor=principal)):
        if isinstance(outcome, QuaiError):
            results.append({"index": index, "status": outcome.status, **outcome.as_dict()})
        elif isinstance(outcome, Exception):
            raise outcome  # not a refusal of this order: the API's 500 (the others are written; a retry is safe)
        else:  # the order as written: no read again
            results.append({"index": index, "status": 201 if outcome.created else 200, "order": outcome.order})
    return _answer(request, OrderBatchOut, {"results": results}, 200)


@router.get("", response=list[OrderOut])
@paginate
def order_list(
    request: HttpRequest,
    merchant_id: int | None = None,
    status: str | None = None,
    priority: str | None = None,
    carrier_service: str | None = None,
    channel: str | None = None,
    promised_from: date | None = None,
    promised_to: date | None = None,
    q: str | None = None,
):
    return selectors.order_list(
        scope=principal_of(request).scope(merchant_id),
        status=status,
        priority=priority,
        carrier_service=carrier_service,
        channel=channel,
        promised_from=promised_from,
        promised_to=promised_to,
        q=q,
    )


@router.get("/{order_id}", response=OrderDetailOut)
def order_detail(request: HttpRequest, order_id: int) -> Order:
    return _detail(request, order_id)


@router.post("/{order_id}/cancel", response=OrderDetailOut)
def order_cancel(request: HttpRequest, order_id: int, payload: OrderCancelIn) -> Order:
    principal = principal_of(request)
    order = selectors.order_get(scope=principal.scope(), order_id=order_id)
    services.order_cancel(order=order, actor=principal, reason=payload.reason, version=payload.version)
    return _detail(request, order_id)


@router.post("/{order_id}/hold", response=OrderDetailOut)
def order_hold(request: HttpRequest, order_id: int, payload: OrderHoldIn) -> Order:
    principal = principal_of(request)
    order = selectors.order_get(scope=principal.scope(), order_id=order_id)
    services.order_hold(order=order, reason=payload.reason, note=payload.note, actor=principal)
    return _detail(request, order_id)


@router.post("/{order_id}/release-hold", response=OrderDetailOut)
def order_release_hold(request: HttpRequest, order_id: int, payload: OrderReleaseHoldIn) -> Order:
    principal = principal_of(request)
    order = selectors.order_get(scope=principal.scope(), order_id=order_id)
    services.order_release_hold(order=order, note=payload.note, actor=principal)
    return _detail(request, order_id)


@router.patch("/{order_id}/address", response=OrderDetailOut)
def order_address_change(request: HttpRequest, order_id: int, payload: OrderAddressIn) -> Order:
    principal = principal_of(request)
    order = selectors.order_get(scope=principal.scope(), order_id=order_id)
    services.order_address_change(
        order=order, address=payload.dict(exclude={"version"}), version=payload.version, actor=principal
    )
    return _detail(request, order_id)


if settings.QUAI_BENCH_ENDPOINTS:
    # The benchmark's ceiling (quai/orders/bench_api.py): mounted only when a setting asks for it, never by default.
    from quai.orders.bench_api import router as bench_router

    router.add_router("/bench", bench_router)
