"""Inventory's past-tense events, recorded in the outbox with the change they report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class StockChanged:
    """A movement changed what is on hand somewhere (receipt, move, pick, adjustment, count, …)."""

    name: ClassVar[str] = "inventory.stock_changed"
    aggregate: ClassVar[str] = "sku"

    movement_id: int
    kind: str
    sku_id: int
    quantity: int
    lot: str
    from_location_id: int | None
    to_location_id: int | None
    from_status: str
    to_status: str
    sellable_on_hand: int
    reserved: int

    @property
    def aggregate_id(self) -> int:
        return self.sku_id


class _ReservationEvent:
    """What every reservation event shares: its aggregate is the reservation (each subclass declares the field)."""

    aggregate: ClassVar[str] = "reservation"
    reservation_id: int

    @property
    def aggregate_id(self) -> int:
        return self.reservation_id


@dataclass(frozen=True)
class ReservationMade(_ReservationEvent):
    name: ClassVar[str] = "inventory.reservation_made"

    reservation_id: int
    sku_id: int
    quantity: int
    document_type: str
    document_id: str


@dataclass(frozen=True)
class ReservationAllocated(_ReservationEvent):
    name: ClassVar[str] = "inventory.reservation_allocated"

    reservation_id: int
    sku_id: int
    allocations: list[dict[str, object]]


@dataclass(frozen=True)
class ReservationConsumed(_ReservationEvent):
    name: ClassVar[str] = "inventory.reservation_consumed"

    reservation_id: int
    sku_id: int
    quantity: int
    remaining: int


@dataclass(frozen=True)
class ReservationReleased(_ReservationEvent):
    """Units given back (the whole reservation, or part of it when it was shrunk)."""

    name: ClassVar[str] = "inventory.reservation_released"

    reservation_id: int
    sku_id: int
    quantity: int
    remaining: int


@dataclass(frozen=True)
class ReservationMoved(_ReservationEvent):
    name: ClassVar[str] = "inventory.reservation_moved"

    reservation_id: int
    sku_id: int
    quantity: int
    from_location_id: int
    to_location_id: int


@dataclass(frozen=True)
class StockCountingChanged:
    """A zone entered or left availability (window opened or ended, zone opened or closed)."""

    name: ClassVar[str] = "inventory.stock_counting_changed"
    aggregate: ClassVar[str] = "sku"

    sku_id: int
    location_id: int
    counted: bool
    quantity: int

    @property
    def aggregate_id(self) -> int:
        return self.sku_id


@dataclass(frozen=True)
class CountTaskChanged:
    """A cycle count moved along its state machine (counting, submitted, approved, applied, rejected, …)."""

    name: ClassVar[str] = "inventory.count_task_changed"
    aggregate: ClassVar[str] = "count_task"

    count_task_id: int
    location_id: int
    sku_id: int | None
    from_status: str
    to_status: str

    @property
    def aggregate_id(self) -> int:
        return self.count_task_id
