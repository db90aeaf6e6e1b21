"""Shipping's events. The names are a contract: the promise and the connectors subscribe to them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from quai.core.events import Event


@dataclass(frozen=True)
class ShipmentShipped(Event):
    """The carrier took the order's parcel(s) (its manifest closed with them on the truck)."""

    name = "shipment.shipped"
    aggregate = "order"

    order_id: int
    shipped_at: datetime
    parcel_ids: list[int]
    tracking_numbers: list[str]
    carrier: str

    @property
    def aggregate_id(self) -> int:
        return self.order_id


@dataclass(frozen=True)
class ShipmentDelivered(Event):
    """The carrier says the order's parcel was delivered."""

    name = "shipment.delivered"
    aggregate = "order"

    order_id: int
    delivered_at: datetime

    @property
    def aggregate_id(self) -> int:
        return self.order_id


@dataclass(frozen=True)
class ShipmentTrackingEvent(Event):
    """A new carrier event of the order's parcel, on the normalised scale (label_created … returned)."""

    name = "shipment.tracking_event"
    aggregate = "order"

    order_id: int
    status: str
    occurred_at: datetime
    estimated_delivery: date | None

    @property
    def aggregate_id(self) -> int:
        return self.order_id


@dataclass(frozen=True)
class ParcelLoaded(Event):
    """A parcel was scanned onto the truck of a manifest (every scan is an event: who and when)."""

    name = "shipment.parcel_loaded"
    aggregate = "manifest"

    manifest_id: int
    shipment_id: int
    sscc: str
    operator: str
    scanned_at: datetime

    @property
    def aggregate_id(self) -> int:
        return self.manifest_id
