from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from ninja import Field, Schema
from pydantic import StrictInt


class WaveCreateIn(Schema):
    site_id: StrictInt
    capacity: StrictInt = Field(100, ge=1, le=5000, description="At most this many orders ('release the next N').")
    carrier_services: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=50)
    promised_by: date | None = None
    priorities: list[Annotated[str, Field(max_length=20)]] = Field(default_factory=list, max_length=10)
    zone_id: StrictInt | None = None
    totes: StrictInt = Field(8, ge=1, le=40, description="Totes on a cart.")
    tote_volume_cm3: StrictInt = Field(40_000, ge=1)
    tote_weight_g: StrictInt = Field(15_000, ge=1)


class WaveOut(Schema):
    id: int
    site_id: int
    status: str
    capacity: int
    order_count: int
    criteria: dict[str, object]
    skipped: list[dict[str, object]]
    held: list[dict[str, object]] = Field(
        ..., description="Orders held back by release limits, per merchant: how many, the limit, when room comes back."
    )
    batch_ids: list[int]
    created_at: datetime

    @staticmethod
    def resolve_batch_ids(obj: object) -> list[int]:
        return list(obj.batches.values_list("pk", flat=True))  # type: ignore[attr-defined]


class TaskOut(Schema):
    id: int
    sequence: int
    order_id: int
    sku_code: str = Field(..., alias="sku.code")
    location_code: str = Field(..., alias="location.code")
    lot: str
    tote_code: str = Field(..., alias="tote.code")
    quantity: int
    picked_quantity: int
    status: str
    note: str


class BatchOut(Schema):
    id: int
    wave_id: int
    site_id: int
    zone_id: int
    status: str
    single_units: bool
    operator_id: int | None
    routing: str
    route_m: float
    s_shape_m: float | None
    largest_gap_m: float | None
    order_by_order_m: float
    tote_codes: list[str]
    started_at: datetime | None
    done_at: datetime | None

    @staticmethod
    def resolve_tote_codes(obj: object) -> list[str]:
        return list(obj.totes.order_by("slot").values_list("code", flat=True))  # type: ignore[attr-defined]


class BatchDetailOut(BatchOut):
    tasks: list[TaskOut]

    @staticmethod
    def resolve_tasks(obj: object) -> list[object]:
        return list(obj.tasks.select_related("sku", "location", "tote").order_by("sequence", "pk"))  # type: ignore[attr-defined]


class ScanIn(Schema):
    code: str = Field(..., min_length=1, max_length=200)
    quantity: StrictInt | None = Field(None, ge=1)


class ShortIn(Schema):
    found_quantity: StrictInt = Field(..., ge=0)
    resolution: str = Field(..., max_length=20, description="other_location or backorder")


class ShortPickIn(Schema):
    task_id: StrictInt
    found_quantity: StrictInt = Field(..., ge=0, description="Units found at the place (fewer than asked).")


class BatchConfirmIn(Schema):
    shorts: list[ShortPickIn] = Field(
        default_factory=list,
        max_length=5000,
        description="The short picks keyed in as exceptions; each is backordered. Every other task: as planned.",
    )


class PickedUnitsOut(Schema):
    order_id: int
    line_id: int
    sku_id: int
    sku_code: str
    quantity: int
    lot: str
    from_location_code: str
    tote_code: str
    reservation_id: int


class ToteContentsOut(Schema):
    tote_code: str
    batch_id: int | None
    order_ids: list[int]
    complete: bool
    units: list[PickedUnitsOut]
