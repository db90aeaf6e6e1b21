from __future__ import annotations

from datetime import datetime

from ninja import Schema


class ParcelItemOut(Schema):
    sku_id: int
    sku_code: str
    name: str
    lot: str
    expected: int
    scanned: int


class ParcelOut(Schema):
    id: int
    merchant_id: int
    order_id: int
    order_reference: str
    status: str
    packaging_code: str
    expected_weight_g: int | None
    measured_weight_g: int | None
    weight_ok: bool
    carrier_code: str
    shipment_id: int | None
    tote_code: str
    last_error: str
    has_photo: bool
    closed_at: datetime | None
    created_at: datetime
    items: list[ParcelItemOut]

    @staticmethod
    def resolve_has_photo(obj: object) -> bool:
        return bool(getattr(obj, "photo", None))

    @staticmethod
    def resolve_items(obj: object) -> list[object]:
        return list(obj.items.all())  # type: ignore[attr-defined]
