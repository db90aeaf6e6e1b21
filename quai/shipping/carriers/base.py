"""One interface for every carrier (../shared/reference/INTEGRATIONS.md §6.3): pickup points, a shipment and its
label, cancel, the day's close (manifest / bordereau), tracking, the shopper's tracking link.

Adapters are stateless and configured with their base URL and credentials, so the code that talks to the real
carrier is the code the tests run against a local server speaking the same protocol. Every transport failure
(timeout, refused connection, a 5xx) becomes ``CarrierUnavailable``: the parcel waits and the operator is told; a
refusal of the request itself (4xx, an error status in the body) is ``CarrierRefused`` with the carrier's words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Protocol

from quai.core.errors import QuaiError


class CarrierUnavailable(QuaiError):
    """The carrier did not answer in time or answered with a server error: try again later."""

    status = 424  # a failed dependency: the request was fine, the carrier was not
    code = "carrier_unavailable"


class CarrierRefused(QuaiError):
    """The carrier answered and refused the request (bad address, unknown product…)."""

    status = 422
    code = "carrier_refused"


@dataclass(frozen=True)
class Address:
    name: str
    line1: str
    postcode: str
    city: str
    country: str
    company: str = ""
    line2: str = ""
    phone: str = ""
    email: str = ""


@dataclass(frozen=True)
class CustomsArticle:
    """One line of a CN23: what it is, its HS code, where it was made, how many and what they are worth."""

    description: str
    quantity: int
    weight_g: int
    value: str  # Decimal as text, in ``currency``
    hs_code: str
    origin_country: str
    currency: str = "EUR"


@dataclass(frozen=True)
class ShipmentRequest:
    reference: str  # our parcel's reference (order number / parcel id)
    service_code: str
    sender: Address
    recipient: Address
    weight_g: int
    sscc: str
    length_mm: int = 0
    width_mm: int = 0
    height_mm: int = 0
    pickup_point_id: str = ""
    label_format: str = "pdf"  # "pdf" | "zpl"
    customs: Sequence[CustomsArticle] = ()
    ship_date: str = ""  # ISO date


@dataclass(frozen=True)
class ShipmentResult:
    tracking_number: str
    label: bytes
    label_format: str
    carrier_ref: str = ""
    annexes: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class PickupPoint:
    id: str
    name: str
    address: str
    postcode: str
    city: str
    country: str
    latitude: str = ""
    longitude: str = ""
    distance_m: int | None = None


@dataclass(frozen=True)
class TrackingEvent:
    """One carrier event: the carrier's own code and words, and our normalised ``status`` (None: not mapped)."""

    occurred_at: datetime
    carrier_code: str
    description: str
    status: str | None
    location: str = ""
    estimated_delivery: str = ""


class CarrierAdapter(Protocol):
    code: ClassVar[str]

    def search_pickup_points(
        self, *, country: str, postcode: str, city: str = "", weight_g: int | None = None, limit: int = 10
    ) -> list[PickupPoint]: ...

    def create_shipment(self, request: ShipmentRequest) -> ShipmentResult: ...

    def cancel(self, tracking_number: str) -> bool: ...

    def close_day(self, tracking_numbers: Sequence[str]) -> bytes | None: ...

    def track(self, tracking_number: str) -> list[TrackingEvent]: ...

    def tracking_url(self, tracking_number: str) -> str: ...
