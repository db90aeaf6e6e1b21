"""Customer-service events, recorded by the service that makes the change, in the same transaction.

No personal data in payloads (no names, emails, message texts): a receiver reads a ticket through the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from quai.core.events import Event


class _TicketEvent(Event):
    aggregate: ClassVar[str] = "ticket"
    ticket_id: int

    @property
    def aggregate_id(self) -> int:
        return self.ticket_id


@dataclass(frozen=True)
class TicketCreated(_TicketEvent):
    """A ticket was opened from ``channel`` (email, form, api, shop), linked to ``order_ids``."""

    name: ClassVar[str] = "service.ticket_created"

    ticket_id: int
    channel: str
    category: str
    order_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class TicketStatusChanged(_TicketEvent):
    """The ticket moved along its state machine."""

    name: ClassVar[str] = "service.ticket_status_changed"

    ticket_id: int
    from_status: str
    to_status: str


@dataclass(frozen=True)
class TicketSlaAtRisk(_TicketEvent):
    """An SLA clock (``clock``: first_response or resolution) is due soon (``due``, ISO) or already breached."""

    name: ClassVar[str] = "service.ticket_sla_at_risk"

    ticket_id: int
    clock: str
    due: str
    breached: bool = False


@dataclass(frozen=True)
class CustomerErased(Event):
    """A shopper's personal data was erased on request; their orders (``order_ids``) keep their logistics data."""

    name: ClassVar[str] = "service.customer_erased"
    aggregate: ClassVar[str] = "customer"

    customer_id: int
    order_ids: list[int] = field(default_factory=list)
    ticket_ids: list[int] = field(default_factory=list)

    @property
    def aggregate_id(self) -> int:
        return self.customer_id


class _RmaEvent(Event):
    aggregate: ClassVar[str] = "rma"
    rma_id: int

    @property
    def aggregate_id(self) -> int:
        return self.rma_id


@dataclass(frozen=True)
class RmaOpened(_RmaEvent):
    """A return (or exchange) was opened for ``order_id``; ``lines``: sku_code, quantity."""

    name: ClassVar[str] = "service.rma_opened"

    rma_id: int
    order_id: int
    kind: str
    reason: str
    lines: list[dict[str, object]] = field(default_factory=list)


@dataclass(frozen=True)
class RmaStatusChanged(_RmaEvent):
    """The return moved along its state machine (``label_requested``: shipping makes the return label)."""

    name: ClassVar[str] = "service.rma_status_changed"

    rma_id: int
    order_id: int
    from_status: str
    to_status: str


@dataclass(frozen=True)
class RefundRecorded(Event):
    """A refund was recorded for ``order_id`` (``state``: recorded, pushed or failed on the shop)."""

    name: ClassVar[str] = "service.refund_recorded"
    aggregate: ClassVar[str] = "refund"

    refund_id: int
    order_id: int
    amount: str
    currency: str
    state: str

    @property
    def aggregate_id(self) -> int:
        return self.refund_id


@dataclass(frozen=True)
class ReturnUnitReceived(_RmaEvent):
    """A unit of return ``rma_id`` was scanned into the returns zone (``location``, status quarantine)."""

    name: ClassVar[str] = "service.return_unit_received"

    rma_id: int
    order_id: int
    unit_id: int
    sku_code: str
    location: str


@dataclass(frozen=True)
class ReturnUnitGraded(_RmaEvent):
    """A returned unit was graded (A resell, B repair, C destroy); ``to_status`` is the stock status it goes to,
    ``location`` where it went (B, C) or where it should be put back (A, empty when no storage place was found)."""

    name: ClassVar[str] = "service.return_unit_graded"

    rma_id: int
    order_id: int
    unit_id: int
    sku_code: str
    grade: str
    to_status: str
    location: str


@dataclass(frozen=True)
class ReturnUnitRestocked(_RmaEvent):
    """A unit graded A was put back in storage at ``location``, sellable again."""

    name: ClassVar[str] = "service.return_unit_restocked"

    rma_id: int
    order_id: int
    unit_id: int
    sku_code: str
    location: str
