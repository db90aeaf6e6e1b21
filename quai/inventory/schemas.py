from __future__ import annotations

from datetime import date, datetime

from ninja import Field, Schema


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
    sku_id: int
    quantity: int = Field(..., gt=0)
    document_type: str = ""
    document_id: str = ""
    merchant_id: int | None = None
    allocate: bool = False


class ReservationConsumeIn(Schema):
    quantity: int | None = Field(None, gt=0)


class ReservationShrinkIn(Schema):
    quantity: int = Field(..., gt=0)
