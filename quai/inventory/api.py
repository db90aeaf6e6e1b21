"""Stock over HTTP: availability, stock per location and zone, the ledger, reservations. Thin: one service each."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest
from ninja import Router, Status
from ninja.pagination import paginate

from quai.catalog.models import Sku
from quai.core.errors import NotFound
from quai.inventory import selectors, services
from quai.inventory.models import Reservation
from quai.inventory.schemas import (
    AvailabilityOut,
    MovementOut,
    ReservationConsumeIn,
    ReservationCreateIn,
    ReservationOut,
    ReservationShrinkIn,
    StockOut,
    ZoneStockOut,
)
from quai.tenants.auth import principal_of

router = Router(tags=["inventory"])


@router.get("/availability", response=list[AvailabilityOut])
@paginate
def availability_list(
    request: HttpRequest, merchant_id: int | None = None, q: str | None = None, in_stock: bool | None = None
):
    scope = principal_of(request).merchant_filter(merchant_id)
    return selectors.availability_list(merchant_id=scope, q=q, in_stock=in_stock)


@router.get("/availability/{sku_id}", response=AvailabilityOut)
def availability_detail(request: HttpRequest, sku_id: int) -> selectors.SkuAvailability:
    scope = principal_of(request).merchant_filter(None)
    return selectors.availability_get(merchant_id=scope, sku_id=sku_id)


@router.get("/stock", response=list[StockOut])
@paginate
def stock_list(
    request: HttpRequest,
    merchant_id: int | None = None,
    location_id: int | None = None,
    zone_id: int | None = None,
    sku_id: int | None = None,
    status: str | None = None,
):
    scope = principal_of(request).merchant_filter(merchant_id)
    return selectors.stock_list(
        merchant_id=scope, location_id=location_id, zone_id=zone_id, sku_id=sku_id, status=status
    )


@router.get("/stock/zones", response=list[ZoneStockOut])
@paginate
def stock_by_zone(
    request: HttpRequest, merchant_id: int | None = None, zone_id: int | None = None, sku_id: int | None = None
):
    scope = principal_of(request).merchant_filter(merchant_id)
    return selectors.stock_by_zone(merchant_id=scope, zone_id=zone_id, sku_id=sku_id)


@router.get("/movements", response=list[MovementOut])
@paginate
def movement_list(
    request: HttpRequest,
    merchant_id: int | None = None,
    sku_id: int | None = None,
    location_id: int | None = None,
    kind: str | None = None,
    document_type: str | None = None,
    document_id: str | None = None,
):
    scope = principal_of(request).merchant_filter(merchant_id)
    return selectors.movement_list(
        merchant_id=scope,
        sku_id=sku_id,
        location_id=location_id,
        kind=kind,
        document_type=document_type,
        document_id=document_id,
    )


@router.get("/reservations", response=list[ReservationOut])
@paginate
def reservation_list(
    request: HttpRequest,
    merchant_id: int | None = None,
    sku_id: int | None = None,
    status: str | None = None,
    document_id: str | None = None,
):
    scope = principal_of(request).merchant_filter(merchant_id)
    return selectors.reservation_list(merchant_id=scope, sku_id=sku_id, status=status, document_id=document_id)


@router.post("/reservations", response={201: ReservationOut})
def reservation_create(request: HttpRequest, payload: ReservationCreateIn) -> Status[Reservation]:
    merchant = principal_of(request).merchant_for(payload.merchant_id)
    sku = Sku.objects.filter(merchant_id=merchant.pk, pk=payload.sku_id).first()
    if sku is None:
        raise NotFound("SKU not found.", code="unknown_sku", details={"sku_id": payload.sku_id})
    with transaction.atomic():
        reservation = services.reservation_create(
            merchant=merchant,
            sku=sku,
            quantity=payload.quantity,
            document_type=payload.document_type,
            document_id=payload.document_id,
            actor=principal_of(request).user,
        )
        if payload.allocate:
            services.reservation_allocate(reservation=reservation, actor=principal_of(request).user)
    return Status(201, selectors.reservation_get(merchant_id=merchant.pk, reservation_id=reservation.pk))


def _own_reservation(request: HttpRequest, reservation_id: int) -> Reservation:
    return selectors.reservation_get(
        merchant_id=principal_of(request).merchant_filter(None), reservation_id=reservation_id
    )


@router.get("/reservations/{reservation_id}", response=ReservationOut)
def reservation_detail(request: HttpRequest, reservation_id: int) -> Reservation:
    return _own_reservation(request, reservation_id)


def _after(request: HttpRequest, reservation: Reservation) -> Reservation:
    return selectors.reservation_get(merchant_id=None, reservation_id=reservation.pk)


@router.post("/reservations/{reservation_id}/allocate", response=ReservationOut)
def reservation_allocate(request: HttpRequest, reservation_id: int) -> Reservation:
    reservation = _own_reservation(request, reservation_id)
    return _after(request, services.reservation_allocate(reservation=reservation, actor=principal_of(request).user))


@router.post("/reservations/{reservation_id}/release", response=ReservationOut)
def reservation_release(request: HttpRequest, reservation_id: int) -> Reservation:
    reservation = _own_reservation(request, reservation_id)
    return _after(request, services.reservation_release(reservation=reservation, actor=principal_of(request).user))


@router.post("/reservations/{reservation_id}/shrink", response=ReservationOut)
def reservation_shrink(request: HttpRequest, reservation_id: int, payload: ReservationShrinkIn) -> Reservation:
    reservation = _own_reservation(request, reservation_id)
    return _after(
        request,
        services.reservation_shrink(
            reservation=reservation, quantity=payload.quantity, actor=principal_of(request).user
        ),
    )


@router.post("/reservations/{reservation_id}/consume", response=ReservationOut)
def reservation_consume(request: HttpRequest, reservation_id: int, payload: ReservationConsumeIn) -> Any:
    reservation = _own_reservation(request, reservation_id)
    return _after(
        request,
        services.reservation_consume(
            reservation=reservation, quantity=payload.quantity, actor=principal_of(request).user
        ),
    )
