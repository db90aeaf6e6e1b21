"""Fulfilment HTTP API: waves and batches are the warehouse's (staff only); what was picked of an order, and what a
tote holds, is read by staff and by the order's merchant (scoped)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router, Status
from ninja.pagination import paginate

from quai.fulfillment import domain, selectors, services
from quai.fulfillment.models import PickBatch, Wave
from quai.fulfillment.route_map import route_svg
from quai.fulfillment.schemas import (
    BatchConfirmIn,
    BatchDetailOut,
    BatchOut,
    PickedUnitsOut,
    ScanIn,
    ShortIn,
    ToteContentsOut,
    WaveCreateIn,
    WaveOut,
)
from quai.tenants.auth import principal_of
from quai.warehouse.selectors import site_get

router = Router(tags=["fulfillment"])


def _staff(request: HttpRequest) -> Any:
    principal = principal_of(request)
    principal.require_staff()
    return principal.user


@router.post("/waves", response={201: WaveOut})
def wave_create(request: HttpRequest, payload: WaveCreateIn) -> Status[Wave]:
    """Release a wave: the most urgent waiting orders matching the criteria, at most ``capacity``."""
    user = _staff(request)
    site = site_get(site_id=payload.site_id)
    criteria = domain.WaveCriteria(
        carrier_services=frozenset(payload.carrier_services),
        promised_by=payload.promised_by,
        priorities=frozenset(payload.priorities),
        zone_id=payload.zone_id,
        capacity=payload.capacity,
    )
    cart = domain.Cart(
        totes=payload.totes, tote_volume_cm3=payload.tote_volume_cm3, tote_weight_g=payload.tote_weight_g
    )
    return Status(201, services.wave_release(site=site, criteria=criteria, cart=cart, actor=user))


@router.get("/waves/{wave_id}", response=WaveOut)
def wave_detail(request: HttpRequest, wave_id: int) -> Wave:
    _staff(request)
    return selectors.wave_get(wave_id=wave_id)


@router.get("/batches", response=list[BatchOut])
@paginate
def batch_list(request: HttpRequest, site_id: int | None = None, status: str | None = None):
    _staff(request)
    return selectors.batch_list(site_id=site_id, status=status)


@router.get("/batches/{batch_id}", response=BatchDetailOut)
def batch_detail(request: HttpRequest, batch_id: int) -> PickBatch:
    _staff(request)
    return selectors.batch_get(batch_id=batch_id)


_SVG = {
    200: {"description": "The route on the site map.", "content": {"image/svg+xml": {"schema": {"type": "string"}}}}
}


@router.get("/batches/{batch_id}/route.svg", openapi_extra={"responses": _SVG})
def batch_route(request: HttpRequest, batch_id: int) -> HttpResponse:
    _staff(request)
    batch = selectors.batch_get(batch_id=batch_id)
    return HttpResponse(route_svg(batch=batch), content_type="image/svg+xml; charset=utf-8")


@router.post("/batches/{batch_id}/start", response=BatchDetailOut)
def batch_start(request: HttpRequest, batch_id: int) -> PickBatch:
    return services.batch_start(batch_id=batch_id, operator=_staff(request))


@router.post("/batches/{batch_id}/pause", response=BatchDetailOut)
def batch_pause(request: HttpRequest, batch_id: int) -> PickBatch:
    return services.batch_pause(batch_id=batch_id, operator=_staff(request))


@router.post("/batches/{batch_id}/resume", response=BatchDetailOut)
def batch_resume(request: HttpRequest, batch_id: int) -> PickBatch:
    return services.batch_resume(batch_id=batch_id, operator=_staff(request))


@router.post("/batches/{batch_id}/scan", response=BatchDetailOut)
def batch_scan(request: HttpRequest, batch_id: int, payload: ScanIn) -> PickBatch:
    """One scan, read by the current stop's step: location, then item (GTIN, GS1 or SKU code), then tote."""
    services.pick_scan(batch_id=batch_id, operator=_staff(request), code=payload.code, quantity=payload.quantity)
    return selectors.batch_get(batch_id=batch_id)


@router.post("/batches/{batch_id}/short", response=BatchDetailOut)
def batch_short(request: HttpRequest, batch_id: int, payload: ShortIn) -> PickBatch:
    services.pick_short(
        batch_id=batch_id,
        operator=_staff(request),
        found_quantity=payload.found_quantity,
        resolution=payload.resolution,
    )
    return selectors.batch_get(batch_id=batch_id)


@router.post("/batches/{batch_id}/confirm", response=BatchDetailOut)
def batch_confirm(request: HttpRequest, batch_id: int, payload: BatchConfirmIn) -> PickBatch:
    """Paper picking: a supervisor confirms the whole started batch as picked, the short picks as exceptions
    (backordered). A held or cancelled order's tasks are dropped, as the handheld drops them."""
    services.batch_confirm_picked(
        batch_id=batch_id,
        operator=_staff(request),
        shorts={short.task_id: short.found_quantity for short in payload.shorts},
    )
    return selectors.batch_get(batch_id=batch_id)


@router.get("/totes/contents", response=ToteContentsOut)
def tote_contents(request: HttpRequest, code: str, site_id: int | None = None) -> Any:
    """The orders in a tote and their picked units (a merchant sees only its own orders in it)."""
    return selectors.tote_contents(scope=principal_of(request).scope(), tote_code=code, site_id=site_id)


@router.get("/orders/{order_id}/picked-units", response=list[PickedUnitsOut])
def order_picked_units(request: HttpRequest, order_id: int) -> Any:
    return selectors.order_picked_units(scope=principal_of(request).scope(), order_id=order_id)
