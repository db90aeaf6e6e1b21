from __future__ import annotations

from datetime import date, datetime

from ninja import Field, Schema
from pydantic import StrictBool, StrictInt


class IncomingOut(Schema):
    expected_date: date | None
    quantity: int


class AvailabilityOut(Schema):
    merchant_id: int
    sku_id: int
    sku_code: str
    sku_name: str
    on_hand: int
    reserved: int
    available: int
    safety_buffer: int
    available_to_sell: int
    incoming_quantity: int
    incoming: list[IncomingOut]


class StockOut(Schema):
    id: int
    merchant_id: int
    sku_id: int
    sku_code: str = Field(..., alias="sku.code")
    location_id: int
    location_code: str = Field(..., alias="location.code")
    zone_id: int = Field(..., alias="location.zone_id")
    lot: str
    expiry: date | None
    status: str
    on_hand: int
    reserved: int
    free: int
    counted: bool


class ZoneStockOut(Schema):
    merchant_id: int
    zone_id: int = Field(..., alias="zone_id_value")
    zone_code: str
    sku_id: int
    sku_code: str
    status: str
    on_hand: int
    reserved: int
    free: int

    @staticmethod
    def resolve_free(obj: dict[str, int]) -> int:
        return obj["on_hand"] - obj["reserved"]


class MovementOut(Schema):
    id: int
    merchant_id: int
    kind: str
    sku_id: int
    lot: str
    expiry: date | None
    serial: str
    from_location_id: int | None
    from_status: str
    to_location_id: int | None
    to_status: str
    quantity: int
    actor_id: int | None
    reason: str
    document_type: str
    document_id: str
    occurred_at: datetime


class AllocationOut(Schema):
    id: int
    location_id: int
    lot: str
    expiry: date | None
    quantity: int
    consumed_quantity: int


class ReservationOut(Schema):
    id: int
    merchant_id: int
    sku_id: int
    status: str
    quantity: int
    requested_quantity: int
    consumed_quantity: int
    released_quantity: int
    document_type: str
    document_id: str
    created_at: datetime
    updated_at: datetime
    allocations: list[AllocationOut]


class ReservationCreateIn(Schema):
    sku_id: StrictInt
    quantity: StrictInt = Field(..., gt=0)
    document_type: str = Field("", max_length=50)
    document_id: str = Field("", max_length=100)
    merchant_id: StrictInt | None = None
    allocate: StrictBool = False


class ReservationConsumeIn(Schema):
    quantity: StrictInt | None = Field(None, gt=0)


class ReservationShrinkIn(Schema):
    quantity: StrictInt = Field(..., gt=0)


class CountLineOut(Schema):
    id: int
    merchant_id: int
    sku_id: int
    sku_code: str = Field(..., alias="sku.code")
    lot: str
    expiry: date | None
    status: str
    counted_quantity: int
    expected_quantity: int | None
    reserved_quantity: int | None
    variance: int | None
    needs_approval: bool


class CountTaskOut(Schema):
    id: int
    site_id: int
    location_id: int
    location_code: str = Field(..., alias="location.code")
    sku_id: int | None
    merchant_id: int | None
    blind: bool
    status: str
    review_reasons: list[str]
    created_by_id: int | None
    counted_by_id: int | None
    decided_by_id: int | None
    created_at: datetime
    submitted_at: datetime | None
    decided_at: datetime | None
    applied_at: datetime | None
    lines: list[CountLineOut]

    @staticmethod
    def resolve_review_reasons(obj: object) -> list[str]:
        return [reason for reason in str(getattr(obj, "review_reasons", "")).split(",") if reason]

    @staticmethod
    def resolve_lines(obj: object) -> list[object]:
        return list(obj.lines.all())  # type: ignore[attr-defined]


class CountTaskCreateIn(Schema):
    location_id: StrictInt | None = None
    sku_id: StrictInt | None = None
    site_id: StrictInt | None = None
    blind: StrictBool = True


class CountLineSetIn(Schema):
    sku_id: StrictInt
    counted_quantity: StrictInt = Field(..., ge=0)
    lot: str = Field("", max_length=64)
    expiry: date | None = None
    status: str = Field("sellable", max_length=20)


class CountDecisionIn(Schema):
    note: str = Field("", max_length=255)


class StockMoveIn(Schema):
    sku_id: StrictInt
    from_location_id: StrictInt
    to_location_id: StrictInt
    quantity: StrictInt = Field(..., gt=0)
    lot: str = Field("", max_length=64)
    expiry: date | None = None
    status: str = Field("sellable", max_length=20)
    to_status: str | None = Field(None, max_length=20)
    reason: str = Field("", max_length=255)


class StockAdjustIn(Schema):
    sku_id: StrictInt
    location_id: StrictInt
    quantity_delta: StrictInt
    reason: str = Field(..., max_length=255)
    lot: str = Field("", max_length=64)
    expiry: date | None = None
    status: str = Field("sellable", max_length=20)
