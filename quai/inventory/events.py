"""Inventory's past-tense events, recorded in the outbox with the change they report.

Merchants will read these (outbound webhooks publish ``docs/EVENTS.md``), so beside the internal ids each event
carries the merchant's own terms: the SKU's code and the locations' codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from quai.core.events import Event


@dataclass(frozen=True)
class StockChanged(Event):
    """A movement changed what is on hand somewhere (receipt, move, pick, adjustment, count, …).

    ``sellable_on_hand`` and ``reserved`` are the SKU's totals after the movement.
    """

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
    sku_code: str = ""
    from_location_code: str = ""
    to_location_code: str = ""

    @property
    def aggregate_id(self) -> int:
        return self.sku_id


class _ReservationEvent(Event):
    """What every reservation event shares: its aggregate is the reservation (each subclass declares the field)."""

    aggregate: ClassVar[str] = "reservation"
    reservation_id: int

    @property
    def aggregate_id(self) -> int:
        return self.reservation_id


@dataclass(frozen=True)
class ReservationMade(_ReservationEvent):
    """Units of a SKU are set aside for a document (an order line), not yet at a place."""

    name: ClassVar[str] = "inventory.reservation_made"

    reservation_id: int
    sku_id: int
    quantity: int
    document_type: str
    document_id: str
    sku_code: str = ""


@dataclass(frozen=True)
class ReservationAllocated(_ReservationEvent):
    """A reservation was given places to pick from: one entry per location and lot (``location_id``,
    ``location_code``, ``lot``, ``quantity``, ``stock_id``)."""

    name: ClassVar[str] = "inventory.reservation_allocated"

    reservation_id: int
    sku_id: int
    allocations: list[dict[str, object]]
    sku_code: str = ""
    document_type: str = ""
    document_id: str = ""


@dataclass(frozen=True)
class ReservationConsumed(_ReservationEvent):
    """Reserved units left the stock (picked and shipped); ``remaining`` are still reserved."""

    name: ClassVar[str] = "inventory.reservation_consumed"

    reservation_id: int
    sku_id: int
    quantity: int
    remaining: int
    sku_code: str = ""
    document_type: str = ""
    document_id: str = ""


@dataclass(frozen=True)
class ReservationReleased(_ReservationEvent):
    """Units given back (the whole reservation, or part of it when it was shrunk)."""

    name: ClassVar[str] = "inventory.reservation_released"

    reservation_id: int
    sku_id: int
    quantity: int
    remaining: int
    sku_code: str = ""
    document_type: str = ""
    document_id: str = ""


@dataclass(frozen=True)
class ReservationMoved(_ReservationEvent):
    """Allocated units now wait at another location (their stock was moved)."""

    name: ClassVar[str] = "inventory.reservation_moved"

    reservation_id: int
    sku_id: int
    quantity: int
    from_location_id: int
    to_location_id: int
    sku_code: str = ""
    from_location_code: str = ""
    to_location_code: str = ""


@dataclass(frozen=True)
class StockCountingChanged(Event):
    """A zone entered or left availability (window opened or ended, zone opened or closed)."""

    name: ClassVar[str] = "inventory.stock_counting_changed"
    aggregate: ClassVar[str] = "sku"

    sku_id: int
    location_id: int
    counted: bool
    quantity: int
    sku_code: str = ""
    location_code: str = ""

    @property
    def aggregate_id(self) -> int:
        return self.sku_id


@dataclass(frozen=True)
class CountTaskChanged(Event):
    """A cycle count moved along its state machine (counting, submitted, approved, applied, rejected, …)."""

    name: ClassVar[str] = "inventory.count_task_changed"
    aggregate: ClassVar[str] = "count_task"

    count_task_id: int
    location_id: int
    sku_id: int | None
    from_status: str
    to_status: str
    location_code: str = ""
    sku_code: str = ""

    @property
    def aggregate_id(self) -> int:
        return self.count_task_id
