"""Orders HTTP API: intake, reads with their timeline, and the steps a shop or an agent asks (cancel, hold, address).

Thin: each handler parses, calls one service and answers the order as ``quai.orders.selectors`` reads it. Every
route reads through the principal's scope, so another merchant's order answers ``order_not_found``.
"""

# No "from __future__ import annotations" here: Ninja reads the query parameters' types (a date) at import, and
# @paginate's wrapper does not carry this module's names for it to resolve strings.
from datetime import date

from django.http import HttpRequest
from ninja import Router, Status
from ninja.pagination import paginate

from quai.orders import selectors, services
from quai.orders.models import Order
from quai.orders.schemas import (
    OrderAddressIn,
    OrderCancelIn,
    OrderCreateIn,
    OrderDetailOut,
    OrderHoldIn,
    OrderOut,
    OrderReleaseHoldIn,
)
from quai.tenants.auth import principal_of

router = Router(tags=["orders"])


def _detail(request: HttpRequest, order_id: int) -> Order:
    return selectors.order_detail(scope=principal_of(request).scope(), order_id=order_id)


@router.post("", response={200: OrderDetailOut, 201: OrderDetailOut})
def order_create(request: HttpRequest, payload: OrderCreateIn) -> Status[Order]:
    """Accept one order. The same order sent again (same channel and external id, same contents) answers 200 with
    the order already stored; other contents under that external id answer 409 ``order_external_id_reused``."""
    principal = principal_of(request)
    merchant = principal.merchant_for(payload.merchant_id)
    data = payload.dict(exclude={"merchant_id"})
    result = services.order_create(merchant=merchant, data=data, actor=principal)
    return Status(201 if result.created else 200, _detail(request, result.order.pk))


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
