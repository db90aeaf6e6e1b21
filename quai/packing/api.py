"""Packing HTTP API: the parcels of an order and their photo, read by staff and by the order's merchant (scoped).
Packing itself happens at the pack station screen (/ops/packing/)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Router

from quai.core.errors import NotFound
from quai.orders.selectors import order_get
from quai.packing import selectors
from quai.packing.schemas import ParcelOut
from quai.tenants.auth import principal_of

router = Router(tags=["packing"])

_IMAGE = {
    200: {
        "description": "The photo of the open parcel taken at the pack station.",
        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.get("/orders/{order_id}/parcels", response=list[ParcelOut])
def order_parcels(request: HttpRequest, order_id: int) -> Any:
    scope = principal_of(request).scope()
    order_get(scope=scope, order_id=order_id)  # another merchant's order: order_not_found
    return list(selectors.parcels_of_order(scope=scope, order_id=order_id))


@router.get("/parcels/{parcel_id}", response=ParcelOut)
def parcel_detail(request: HttpRequest, parcel_id: int) -> Any:
    return selectors.parcel_get(scope=principal_of(request).scope(), parcel_id=parcel_id)


@router.get("/parcels/{parcel_id}/photo", openapi_extra={"responses": _IMAGE})
def parcel_photo(request: HttpRequest, parcel_id: int) -> HttpResponse:
    """Evidence for customer service: what went into the box."""
    parcel = selectors.parcel_get(scope=principal_of(request).scope(), parcel_id=parcel_id)
    if not parcel.photo:
        raise NotFound(_("This parcel has no photo."), code="parcel_photo_not_found", details={"parcel_id": parcel_id})
    return HttpResponse(bytes(parcel.photo), content_type=parcel.photo_type or "image/jpeg")
