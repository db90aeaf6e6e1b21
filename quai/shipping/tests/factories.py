"""Shipments, tracking events and manifests made directly (no pack station), for API and isolation tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from itertools import count
from typing import Any

from quai.core import clock
from quai.orders.tests.factories import order_for
from quai.shipping import services
from quai.shipping.models import Manifest, Shipment, TrackingEventRecord
from quai.warehouse.tests.factories import LocationFactory

_numbers = count(1)


def shipment_for(merchant: Any, *, external_id: str | None = None, parcel_id: int | None = None) -> Shipment:
    """A labelled shipment of a new order of ``merchant`` with the sandbox carrier, and one tracking event."""
    n = next(_numbers)
    order = order_for(merchant, external_id=external_id or f"SHP-{merchant.code}-{n}")
    shipment = Shipment.objects.create(
        merchant_id=merchant.pk,
        order_id=order.pk,
        order_reference=order.external_id,
        parcel_id=parcel_id if parcel_id is not None else 900_000 + n,
        carrier=services.sandbox_carrier_ensure(),
        service="STANDARD",
        sscc=services.sscc_next(),
        tracking_number=f"SBX{n:08d}{merchant.pk}",
        label=b"%PDF-1.4 sandbox label",
        label_format="pdf",
        weight_g=500,
        stock_location_id=LocationFactory().pk,
    )
    TrackingEventRecord.objects.create(
        merchant_id=merchant.pk,
        shipment=shipment,
        status="label_created",
        carrier_code="LABEL",
        description="Label created",
        occurred_at=clock.now() - timedelta(minutes=5),
    )
    return shipment


def manifest_for(merchant: Any) -> int:
    """A closed manifest holding one of ``merchant``'s shipments (manifests are the warehouse's: staff only)."""
    shipment = shipment_for(merchant)
    manifest = Manifest.objects.create(
        carrier=shipment.carrier, number=f"ISO-{merchant.code}-{next(_numbers)}", status="closed"
    )
    Shipment.objects.filter(pk=shipment.pk).update(manifest=manifest)
    return int(manifest.pk)


# Path parameters of the shipping routes → a row of ``merchant``, for the project-wide isolation walk.
ISOLATION_FACTORIES: dict[str, Callable[[Any], int]] = {
    "shipment_id": lambda merchant: shipment_for(merchant).pk,
    "manifest_id": manifest_for,
}
