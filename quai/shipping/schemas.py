from __future__ import annotations

from datetime import date, datetime

from ninja import Field, Schema


class ShipmentOut(Schema):
    id: int
    merchant_id: int
    order_id: int
    order_reference: str
    parcel_id: int
    carrier: str
    service: str
    sscc: str
    tracking_number: str
    tracking_url: str
    label_format: str
    status: str
    weight_g: int
    pickup_point_id: str
    manifest_id: int | None
    loaded_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    estimated_delivery: date | None
    created_at: datetime

    @staticmethod
    def resolve_carrier(obj: object) -> str:
        return str(obj.carrier.code)  # type: ignore[attr-defined]


class TrackingEventOut(Schema):
    id: int
    shipment_id: int
    status: str
    carrier_code: str
    description: str
    location: str
    occurred_at: datetime


class PickupPointOut(Schema):
    id: str
    name: str
    address: str
    postcode: str
    city: str
    country: str
    latitude: str
    longitude: str
    distance_m: int | None


class ManifestOut(Schema):
    id: int
    number: str
    carrier: str
    status: str
    closed_at: datetime | None
    missing: list[dict[str, object]]
    shipment_ids: list[int]
    has_document: bool

    @staticmethod
    def resolve_carrier(obj: object) -> str:
        return str(obj.carrier.code)  # type: ignore[attr-defined]

    @staticmethod
    def resolve_shipment_ids(obj: object) -> list[int]:
        return list(obj.shipments.order_by("pk").values_list("pk", flat=True))  # type: ignore[attr-defined]

    @staticmethod
    def resolve_has_document(obj: object) -> bool:
        return bool(getattr(obj, "document", None))


class ManifestOpenIn(Schema):
    carrier: str = Field(..., min_length=1, max_length=40, description="The carrier account's code.")


class ManifestScanIn(Schema):
    code: str = Field(
        ..., min_length=1, max_length=100, description="The parcel's SSCC (or GS1-128 data) or tracking number."
    )
