"""Promise events, recorded in the outbox with the change that makes them.

The merchant's platform receives them through its webhooks and may tell the shopper before a promise is missed
(``promise.at_risk``, ``promise.reforecast``). ``promise.lane_widened`` concerns no merchant: it tells supervisors a
lane (site × carrier service × zone) now promises at a higher confidence because it kept too few promises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from quai.core.events import Event


class _PromiseEvent(Event):
    aggregate: ClassVar[str] = "order"
    order_id: int

    @property
    def aggregate_id(self) -> int:
        return self.order_id


@dataclass(frozen=True)
class PromiseRecorded(_PromiseEvent):
    """A promise is recorded on the order (``source``: shop, when the checkout showed it; intake otherwise)."""

    name: ClassVar[str] = "promise.recorded"

    order_id: int
    source: str
    service: str
    ship_date: str
    delivery_from: str
    delivery_by: str


@dataclass(frozen=True)
class PromiseAtRisk(_PromiseEvent):
    """The order will miss its ship date given the work ahead of it: tell the shopper before the miss."""

    name: ClassVar[str] = "promise.at_risk"

    order_id: int
    ship_by: str
    delivery_by: str
    cause: str


@dataclass(frozen=True)
class PromiseReforecast(_PromiseEvent):
    """A parcel late in transit has a new expected delivery date, told before the promised date passes."""

    name: ClassVar[str] = "promise.reforecast"

    order_id: int
    delivery_by: str
    forecast_date: str


@dataclass(frozen=True)
class PromiseKept(_PromiseEvent):
    """Delivered by the promised date (``shipped_on_time`` is measured apart)."""

    name: ClassVar[str] = "promise.kept"

    order_id: int
    delivery_by: str
    shipped_on_time: bool


@dataclass(frozen=True)
class PromiseBroken(_PromiseEvent):
    """Not delivered by the promised date; ``cause`` is warehouse_late, carrier_late, stock_short, address_problem,
    customer_hold or force_majeure."""

    name: ClassVar[str] = "promise.broken"

    order_id: int
    delivery_by: str
    cause: str
    shipped_on_time: bool | None = None


@dataclass(frozen=True)
class PromiseLaneWidened(Event):
    """A lane's kept rate fell under its threshold (``widened``) or came back over it (not ``widened``)."""

    name: ClassVar[str] = "promise.lane_widened"
    aggregate: ClassVar[str] = "transit_lane"

    lane_id: int
    site: str
    service: str
    zone: str
    kept_rate: float
    confidence: float
    widened: bool

    @property
    def aggregate_id(self) -> int:
        return self.lane_id
