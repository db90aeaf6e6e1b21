"""Shipping HTTP API. A merchant reads its own shipments (labels, tracking) and searches pickup points for its
checkout; manifests (the truck's handover) are the warehouse's: staff only."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Field as NinjaField
from ninja import Query, Router, Schema, Status

from quai.core.errors import NotFound, ValidationFailed
from quai.orders.selectors import order_get
from quai.shipping import selectors, services
from quai.shipping.http import label_response, manifest_response
from quai.shipping.models import Manifest
from quai.shipping.schemas import (
    ManifestOpenIn,
    ManifestOut,
    ManifestScanIn,
    PickupPointOut,
    ShipmentOut,
    TrackingEventOut,
)
from quai.tenants.auth import principal_of

router = Router(tags=["shipping"])

_LABEL = {
    200: {
        "description": "The carrier's label: a 10×15 cm PDF, or ZPL for a thermal printer (``label_format``).",
        "content": {
            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            "application/zpl": {"schema": {"type": "string"}},
        },
    }
}
_PDF = {
    200: {
        "description": "The manifest PDF.",
        "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _staff(request: HttpRequest) -> Any:
    principal = principal_of(request)
    principal.require_staff()
    return principal.user


@router.get("/orders/{order_id}/shipments", response=list[ShipmentOut])
def order_shipments(request: HttpRequest, order_id: int) -> Any:
    scope = principal_of(request).scope()
    order_get(scope=scope, order_id=order_id)  # another merchant's order: order_not_found
    return list(selectors.shipments_of_order(scope=scope, order_id=order_id))


@router.get("/shipments/{shipment_id}", response=ShipmentOut)
def shipment_detail(request: HttpRequest, shipment_id: int) -> Any:
    return selectors.shipment_get(scope=principal_of(request).scope(), shipment_id=shipment_id)


@router.get("/shipments/{shipment_id}/label", openapi_extra={"responses": _LABEL})
def shipment_label(request: HttpRequest, shipment_id: int) -> HttpResponse:
    shipment = selectors.shipment_get(scope=principal_of(request).scope(), shipment_id=shipment_id)
    return label_response(shipment)


@router.get("/shipments/{shipment_id}/tracking-events", response=list[TrackingEventOut])
def shipment_tracking_events(request: HttpRequest, shipment_id: int) -> Any:
    return list(selectors.tracking_events(scope=principal_of(request).scope(), shipment_id=shipment_id))


class PickupPointQuery(Schema):
    carrier: str = NinjaField(..., min_length=1, max_length=40, description="The carrier account's code.")
    country: str = NinjaField("FR", min_length=2, max_length=2)
    postcode: str = NinjaField(..., min_length=2, max_length=12)
    city: str = NinjaField("", max_length=100)
    weight_g: int | None = NinjaField(None, ge=1, le=150_000)
    limit: int = NinjaField(10, ge=1, le=30)


@router.get("/pickup-points", response=list[PickupPointOut])
def pickup_points(request: HttpRequest, query: Query[PickupPointQuery]) -> Any:
    """Pickup points near a postcode, from the carrier's own search (for a checkout or a support agent)."""
    principal_of(request)
    if not query.country.isalpha():
        raise ValidationFailed(
            _("The country is a two-letter ISO code."),
            details={"fields": [{"field": "country", "message": "ISO 3166-1 alpha-2"}]},
        )
    carrier = services.carrier_get(code=query.carrier)
    return services.carrier_adapter(carrier).search_pickup_points(
        country=query.country.upper(),
        postcode=query.postcode.strip(),
        city=query.city.strip(),
        weight_g=query.weight_g,
        limit=query.limit,
    )


@router.get("/manifests", response=list[ManifestOut])
def manifest_list(request: HttpRequest, status: str | None = None) -> Any:
    _staff(request)
    return list(selectors.manifest_list(status=status)[:200])


@router.post("/manifests", response={201: ManifestOut})
def manifest_open(request: HttpRequest, payload: ManifestOpenIn) -> Status[Manifest]:
    """The carrier's open manifest (made if none), holding every labelled parcel not yet handed over."""
    user = _staff(request)
    return Status(201, services.manifest_open(carrier=services.carrier_get(code=payload.carrier), actor=user))


@router.get("/manifests/{manifest_id}", response=ManifestOut)
def manifest_detail(request: HttpRequest, manifest_id: int) -> Manifest:
    _staff(request)
    return selectors.manifest_get(manifest_id=manifest_id)


@router.post("/manifests/{manifest_id}/scan", response=ManifestOut)
def manifest_scan(request: HttpRequest, manifest_id: int, payload: ManifestScanIn) -> Manifest:
    """A parcel scanned onto the truck."""
    user = _staff(request)
    manifest = selectors.manifest_get(manifest_id=manifest_id)
    services.manifest_scan(manifest=manifest, code=payload.code, actor=user)
    return selectors.manifest_get(manifest_id=manifest_id)


@router.post("/manifests/{manifest_id}/close", response=ManifestOut)
def manifest_close(request: HttpRequest, manifest_id: int) -> Manifest:
    """Hand the loaded parcels over; those not scanned are listed in ``missing`` and wait for the next truck."""
    user = _staff(request)
    manifest = selectors.manifest_get(manifest_id=manifest_id)
    return services.manifest_close(manifest=manifest, actor=user)


@router.get("/manifests/{manifest_id}/document", openapi_extra={"responses": _PDF})
def manifest_document(request: HttpRequest, manifest_id: int) -> HttpResponse:
    _staff(request)
    manifest = selectors.manifest_get(manifest_id=manifest_id)
    if not manifest.document:
        raise NotFound(
            _("The manifest's document is made when it closes."),
            code="manifest_document_not_found",
            details={"manifest_id": manifest_id},
        )
    return manifest_response(manifest)
