from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from ninja import Field, Schema
from pydantic import StrictInt


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


class ParcelScansIn(Schema):
    """A scan burst: the codes a batch-mode scanner buffered, in the order they were scanned."""

    codes: list[Annotated[str, Field(max_length=200)]] = Field(min_length=1, max_length=500)


class ScanOutcomeOut(Schema):
    code: str
    result: str
    reason: str
    message: str
    sku_code: str


class ParcelScansOut(Schema):
    parcel: ParcelOut
    scans: list[ScanOutcomeOut]


class ParcelsCloseIn(Schema):
    """Weighed parcels to label and close in one go (an auto-packing line, a supervisor's batch at a pack table)."""

    parcel_ids: list[StrictInt] = Field(min_length=1, max_length=200)
    label_format: Literal["pdf", "zpl"] = "pdf"


class ParcelCloseOut(Schema):
    parcel_id: int
    result: str
    reason: str
    message: str
    parcel: ParcelOut | None


class ParcelsCloseOut(Schema):
    results: list[ParcelCloseOut]
