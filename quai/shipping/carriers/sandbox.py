"""The built-in sandbox carrier: no network, labels drawn by our own ``labels`` module, tracking that moves
forward with Quai's clock. It lets a warehouse run end to end before a real carrier contract exists, and is what
the demo and the browser tests ship with.

Its tracking numbers carry their creation time (``SB`` + epoch seconds + a counter), so ``track`` needs no state:
label created at once, in transit after 2 h, out for delivery after 20 h, delivered after 26 h.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from quai.core import clock
from quai.shipping import domain, labels
from quai.shipping.carriers.base import (
    Address,
    CarrierRefused,
    PickupPoint,
    ShipmentRequest,
    ShipmentResult,
    TrackingEvent,
)

_counter = itertools.count(1)
STEPS = (
    (timedelta(0), domain.LABEL_CREATED, "Label created"),
    (timedelta(hours=2), domain.IN_TRANSIT, "Parcel collected"),
    (timedelta(hours=20), domain.OUT_FOR_DELIVERY, "Out for delivery"),
    (timedelta(hours=26), domain.DELIVERED, "Delivered"),
)


class SandboxAdapter:
    code: ClassVar[str] = "sandbox"

    def __init__(self, *, sender: Address | None = None) -> None:
        self.sender = sender

    def search_pickup_points(
        self, *, country: str, postcode: str, city: str = "", weight_g: int | None = None, limit: int = 10
    ) -> list[PickupPoint]:
        return [
            PickupPoint(
                id=f"SB{postcode}{n:02d}",
                name=f"Sandbox relay {n}",
                address=f"{n} place du Relais",
                postcode=postcode,
                city=city or "SANDBOX",
                country=country,
                distance_m=250 * n,
            )
            for n in range(1, min(limit, 3) + 1)
        ]

    def create_shipment(self, request: ShipmentRequest) -> ShipmentResult:
        if not request.recipient.postcode.strip():
            raise CarrierRefused("The sandbox carrier needs a postcode.", details={"carrier": self.code})
        number = f"SB{int(clock.now().timestamp()):010d}{next(_counter) % 10000:04d}"
        data = labels.LabelData(
            sscc=request.sscc,
            tracking_number=number,
            carrier_name="Sandbox",
            service=request.service_code or "STANDARD",
            sender=request.sender,
            recipient=request.recipient,
            weight_g=request.weight_g,
            reference=request.reference,
            pickup_point_id=request.pickup_point_id,
        )
        if request.label_format == "zpl":
            return ShipmentResult(number, labels.label_zpl(data).encode("utf-8"), "zpl", carrier_ref=number)
        return ShipmentResult(number, labels.label_pdf(data), "pdf", carrier_ref=number)

    def cancel(self, tracking_number: str) -> bool:
        return True

    def close_day(self, tracking_numbers: Sequence[str]) -> bytes | None:
        return None

    def track(self, tracking_number: str) -> list[TrackingEvent]:
        try:
            created = datetime.fromtimestamp(int(tracking_number[2:12]), tz=UTC)
        except ValueError:
            return []
        now = clock.now()
        return [
            TrackingEvent(
                occurred_at=created + after,
                carrier_code=status,
                description=text,
                status=status,
                estimated_delivery=(created + timedelta(hours=26)).date().isoformat(),
            )
            for after, status, text in STEPS
            if created + after <= now
        ]

    def tracking_url(self, tracking_number: str) -> str:
        return f"https://sandbox.quai.invalid/track/{tracking_number}"
