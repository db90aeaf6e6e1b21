"""Order events, recorded in the outbox by the service that makes the change, in the same transaction.

They speak the merchant's terms: every event names the order by its ``channel`` and ``external_id`` (the shop's
own number) beside Quai's ``order_id``, and lines by their SKU codes. ``order.status_changed`` is recorded with
every step of the state machine; the step's own event (``order.allocated``, ``order.cancelled``…) beside it says
what the step means, so a subscriber picks either every step or the ones it cares about.

No shopper's personal data travels in these payloads (names, addresses, phones): a receiver that needs them reads
the order through the API, which checks who asks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from quai.core.events import Event


class _OrderEvent(Event):
    """What every order event shares: its aggregate is the order, named in the merchant's terms too."""

    aggregate: ClassVar[str] = "order"
    order_id: int
    channel: str
    external_id: str

    @property
    def aggregate_id(self) -> int:
        return self.order_id


@dataclass(frozen=True)
class OrderReceived(_OrderEvent):
    """An order was accepted (once per external id: a resend records nothing). ``lines``: sku_code, quantity."""

    name: ClassVar[str] = "order.received"

    order_id: int
    channel: str
    external_id: str
    priority: str
    currency: str
    total: str
    carrier_service: str = ""
    lines: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class OrderStatusChanged(_OrderEvent):
    """The order moved along its state machine; ``reason`` says why in the words of whoever made the step."""

    name: ClassVar[str] = "order.status_changed"

    order_id: int
    channel: str
    external_id: str
    from_status: str
    to_status: str
    reason: str = ""


@dataclass(frozen=True)
class OrderAllocated(_OrderEvent):
    """Every line is covered by reserved stock. ``lines``: sku_code, quantity, reserved_quantity."""

    name: ClassVar[str] = "order.allocated"

    order_id: int
    channel: str
    external_id: str
    lines: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class OrderBackordered(_OrderEvent):
    """Some line waits for stock. ``lines``: sku_code, quantity, reserved_quantity, backordered_quantity."""

    name: ClassVar[str] = "order.backordered"

    order_id: int
    channel: str
    external_id: str
    lines: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class OrderLinesAllocated(_OrderEvent):
    """Stock that arrived was reserved for backordered lines (``lines``: sku_code, reserved_quantity now,
    backordered_quantity still missing); the order may still wait for other lines."""

    name: ClassVar[str] = "order.lines_allocated"

    order_id: int
    channel: str
    external_id: str
    lines: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class OrderHeld(_OrderEvent):
    """The order is on hold: ``hold_reason`` is payment, fraud, address, customer_service or merchant."""

    name: ClassVar[str] = "order.held"

    order_id: int
    channel: str
    external_id: str
    hold_reason: str
    held_from: str
    note: str = ""


@dataclass(frozen=True)
class OrderHoldReleased(_OrderEvent):
    """The hold is lifted; the order went back to ``to_status``."""

    name: ClassVar[str] = "order.hold_released"

    order_id: int
    channel: str
    external_id: str
    hold_reason: str
    to_status: str


@dataclass(frozen=True)
class OrderCancelled(_OrderEvent):
    """The order is cancelled and its stock given back (``released_lines``: sku_code, quantity released)."""

    name: ClassVar[str] = "order.cancelled"

    order_id: int
    channel: str
    external_id: str
    from_status: str
    reason: str = ""
    released_lines: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class OrderAddressChanged(_OrderEvent):
    """The shipping address changed; ``fields`` names what changed (not the values: they are personal data)."""

    name: ClassVar[str] = "order.address_changed"

    order_id: int
    channel: str
    external_id: str
    fields: list[str] = field(default_factory=list)
    country: str = ""


@dataclass(frozen=True)
class OrderReleased(_OrderEvent):
    """The order's release buffer is over: the warehouse may pick it (``split``: only its covered part ships now)."""

    name: ClassVar[str] = "order.released"

    order_id: int
    channel: str
    external_id: str
    split: bool = False


@dataclass(frozen=True)
class OrderLineAdded(_OrderEvent):
    """A line was added to the order after intake (customer service); ``reserved`` of ``quantity`` units got stock."""

    name: ClassVar[str] = "order.line_added"

    order_id: int
    channel: str
    external_id: str
    sku_code: str
    quantity: int
    reserved: int
    unit_price: str
    by: str = ""


@dataclass(frozen=True)
class OrderCarrierServiceChanged(_OrderEvent):
    """The order's requested carrier service changed before its label existed."""

    name: ClassVar[str] = "order.carrier_service_changed"

    order_id: int
    channel: str
    external_id: str
    from_service: str
    to_service: str
    by: str = ""


@dataclass(frozen=True)
class OrderPersonalDataErased(_OrderEvent):
    """The personal fields of an order were erased on the shopper's request; logistics data stays."""

    name: ClassVar[str] = "order.personal_data_erased"

    order_id: int
    channel: str
    external_id: str
    by: str = ""
