"""Packing's events: every scan at the pack station (who, when, what, accepted or why refused), parcels closed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from quai.core.events import Event


@dataclass(frozen=True)
class PackScanRecorded(Event):
    """A scan at the pack station: ``result`` "ok" or "refused" with the refusal's code in ``reason``."""

    name = "packing.scan_recorded"
    aggregate = "parcel"

    parcel_id: int
    order_id: int
    code: str
    sku_code: str
    result: str
    reason: str
    operator: str
    scanned_at: datetime

    @property
    def aggregate_id(self) -> int:
        return self.parcel_id


@dataclass(frozen=True)
class ParcelClosed(Event):
    """A parcel was closed at the pack station: every unit scanned, its box, its weight, its label."""

    name = "packing.parcel_closed"
    aggregate = "parcel"

    parcel_id: int
    order_id: int
    packaging_code: str
    weight_g: int
    sscc: str
    tracking_number: str
    carrier: str
    operator: str
    closed_at: datetime

    @property
    def aggregate_id(self) -> int:
        return self.parcel_id
