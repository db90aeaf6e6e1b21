"""Stock over HTTP: availability, stock per location and zone, the ledger, reservations. Thin: one service each."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Status
from ninja.pagination import paginate

from quai.catalog.selectors import sku_get
from quai.inventory import selectors, services
from quai.inventory.models import CountTask, Reservation, StockMovement
from quai.inventory.schemas import (
    AvailabilityOut,
    CountDecisionIn,
    CountLineOut,
    CountLineSetIn,
    CountTaskCreateIn,
    CountTaskOut,
    MovementOut,
    ReservationConsumeIn,
    ReservationCreateIn,
    ReservationOut,
    ReservationShrinkIn,
    StockAdjustIn,
    StockMoveIn,
    StockOut,
    ZoneStockOut,
)
from quai.tenants.auth import principal_of
from quai.tenants.scope import Scope
from quai.warehouse.selectors import location_get, site_get

router = Router(tags=["inventory"])


@router.get("/availability", response=list[AvailabilityOut])
@paginate
def availability_list(
    request: HttpRequest, merchant_id: int | None = None, q: str | None = None, in_stock: bool | None = None
):
    scope = principal_of(request).scope(merchant_id)
    return selectors.availability_list(scope=scope, q=q, in_stock=in_stock)


@router.get("/availability/{sku_id}", response=AvailabilityOut)
def availability_detail(request: HttpRequest, sku_id: int) -> selectors.SkuAvailability:
    return selectors.availability_get(scope=principal_of(request).scope(), sku_id=sku_id)


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
    scope = principal_of(request).scope(merchant_id)
    return selectors.stock_list(scope=scope, location_id=location_id, zone_id=zone_id, sku_id=sku_id, status=status)


@router.get("/stock/zones", response=list[ZoneStockOut])
@paginate
def stock_by_zone(
    request: HttpRequest, merchant_id: int | None = None, zone_id: int | None = None, sku_id: int | None = None
):
    scope = principal_of(request).scope(merchant_id)
    return selectors.stock_by_zone(scope=scope, zone_id=zone_id, sku_id=sku_id)


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
    scope = principal_of(request).scope(merchant_id)
    return selectors.movement_list(
        scope=scope,
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
    scope = principal_of(request).scope(merchant_id)
    return selectors.reservation_list(scope=scope, sku_id=sku_id, status=status, document_id=document_id)


@router.post("/reservations", response={201: ReservationOut})
def reservation_create(request: HttpRequest, payload: ReservationCreateIn) -> Status[Reservation]:
    merchant = principal_of(request).merchant_for(payload.merchant_id)
    sku = sku_get(scope=Scope.merchant(merchant), sku_id=payload.sku_id)
    # A retried line answers 409 ``reservation_exists`` with the existing reservation's id in the details.
    reservation = services.reservation_create(
        merchant=merchant,
        sku=sku,
        quantity=payload.quantity,
        document_type=payload.document_type,
        document_id=payload.document_id,
        allocate=payload.allocate,
        actor=principal_of(request).user,
    )
    return Status(201, selectors.reservation_get(scope=Scope.merchant(merchant), reservation_id=reservation.pk))


def _own_reservation(request: HttpRequest, reservation_id: int) -> Reservation:
    return selectors.reservation_get(scope=principal_of(request).scope(), reservation_id=reservation_id)


@router.get("/reservations/{reservation_id}", response=ReservationOut)
def reservation_detail(request: HttpRequest, reservation_id: int) -> Reservation:
    return _own_reservation(request, reservation_id)


def _after(request: HttpRequest, reservation: Reservation) -> Reservation:
    # The reservation was read inside the request's scope just before: reading it back is the same merchant's.
    return selectors.reservation_get(scope=Scope.merchant(reservation.merchant_id), reservation_id=reservation.pk)


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


# --- Staff only: moves, adjustments, cycle counts ---------------------------------------------------------------


def _staff(request: HttpRequest) -> Any:
    principal = principal_of(request)
    principal.require_staff()
    return principal.user


def _all(request: HttpRequest) -> Scope:
    """Every merchant: the routes below are the warehouse staff's (each one checks it first)."""
    return Scope.all_merchants(principal_of(request))


def _sku(request: HttpRequest, sku_id: int) -> Any:
    return sku_get(scope=_all(request), sku_id=sku_id)  # staff only: any merchant's


@router.post("/moves", response={201: MovementOut})
def stock_move(request: HttpRequest, payload: StockMoveIn) -> Status[StockMovement]:
    user = _staff(request)
    movement = services.stock_move(
        sku=_sku(request, payload.sku_id),
        from_location=location_get(location_id=payload.from_location_id),
        to_location=location_get(location_id=payload.to_location_id),
        quantity=payload.quantity,
        lot=payload.lot,
        expiry=payload.expiry,
        status=payload.status,
        to_status=payload.to_status,
        actor=user,
        reason=payload.reason,
        document_type="api",
    )
    return Status(201, movement)


@router.post("/adjustments", response={201: MovementOut})
def stock_adjust(request: HttpRequest, payload: StockAdjustIn) -> Status[StockMovement]:
    user = _staff(request)
    movement = services.stock_adjust(
        sku=_sku(request, payload.sku_id),
        location=location_get(location_id=payload.location_id),
        quantity_delta=payload.quantity_delta,
        lot=payload.lot,
        expiry=payload.expiry,
        status=payload.status,
        actor=user,
        reason=payload.reason,
        document_type="api",
    )
    return Status(201, movement)


@router.get("/count-tasks", response=list[CountTaskOut])
@paginate
def count_task_list(
    request: HttpRequest,
    site_id: int | None = None,
    location_id: int | None = None,
    sku_id: int | None = None,
    status: str | None = None,
):
    _staff(request)
    return selectors.count_task_list(
        scope=_all(request), site_id=site_id, location_id=location_id, sku_id=sku_id, status=status
    )


@router.post("/count-tasks", response={201: list[CountTaskOut]})
def count_task_create(request: HttpRequest, payload: CountTaskCreateIn) -> Status[list[CountTask]]:
    user = _staff(request)
    site = site_get(site_id=payload.site_id) if payload.site_id is not None else None
    tasks = services.count_task_create(
        location=location_get(location_id=payload.location_id) if payload.location_id is not None else None,
        sku=_sku(request, payload.sku_id) if payload.sku_id is not None else None,
        site=site,
        blind=payload.blind,
        actor=user,
    )
    loaded = {
        task.pk: task
        for task in selectors.count_task_list(scope=_all(request)).filter(pk__in=[task.pk for task in tasks])
    }
    return Status(201, [loaded[task.pk] for task in tasks])


@router.get("/count-tasks/{count_task_id}", response=CountTaskOut)
def count_task_detail(request: HttpRequest, count_task_id: int) -> CountTask:
    _staff(request)
    return selectors.count_task_get(scope=_all(request), count_task_id=count_task_id)


@router.post("/count-tasks/{count_task_id}/lines", response=CountLineOut)
def count_line_set(request: HttpRequest, count_task_id: int, payload: CountLineSetIn) -> Any:
    user = _staff(request)
    task = selectors.count_task_get(scope=_all(request), count_task_id=count_task_id)
    return services.count_line_set(
        task=task,
        sku=_sku(request, payload.sku_id),
        lot=payload.lot,
        expiry=payload.expiry,
        status=payload.status,
        counted_quantity=payload.counted_quantity,
        actor=user,
    )


@router.post("/count-tasks/{count_task_id}/submit", response=CountTaskOut)
def count_submit(request: HttpRequest, count_task_id: int) -> CountTask:
    user = _staff(request)
    task = services.count_submit(
        task=selectors.count_task_get(scope=_all(request), count_task_id=count_task_id), actor=user
    )
    return selectors.count_task_get(scope=_all(request), count_task_id=task.pk)


@router.post("/count-tasks/{count_task_id}/approve", response=CountTaskOut)
def count_approve(request: HttpRequest, count_task_id: int, payload: CountDecisionIn) -> CountTask:
    user = _staff(request)
    task = services.count_approve(
        task=selectors.count_task_get(scope=_all(request), count_task_id=count_task_id), actor=user, note=payload.note
    )
    return selectors.count_task_get(scope=_all(request), count_task_id=task.pk)


@router.post("/count-tasks/{count_task_id}/reject", response=CountTaskOut)
def count_reject(request: HttpRequest, count_task_id: int, payload: CountDecisionIn) -> CountTask:
    user = _staff(request)
    task = services.count_reject(
        task=selectors.count_task_get(scope=_all(request), count_task_id=count_task_id), actor=user, reason=payload.note
    )
    return selectors.count_task_get(scope=_all(request), count_task_id=task.pk)
