"""Inbound events, recorded in the outbox by the service that makes the change, in the same transaction.

ASN events speak in the merchant's terms already (the ASN's ``reference``); line and discrepancy entries carry
SKU codes beside SKU ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from quai.core.events import Event


class _AsnEvent(Event):
    """What every ASN event shares: its aggregate is the ASN (each subclass declares the field)."""

    aggregate: ClassVar[str] = "asn"
    asn_id: int

    @property
    def aggregate_id(self) -> int:
        return self.asn_id


@dataclass(frozen=True)
class AsnAnnounced(_AsnEvent):
    """The merchant announced a delivery: ``expected_at`` is an ISO date, or null when none was given."""

    name: ClassVar[str] = "inbound.asn_announced"

    asn_id: int
    reference: str
    expected_at: str | None
    line_count: int
    expected_units: int


@dataclass(frozen=True)
class AsnStatusChanged(_AsnEvent):
    """The ASN moved along its state machine: announced → receiving → closed, or announced → cancelled.

    Recorded with every status change, beside the step's own event (``inbound.asn_cancelled``,
    ``inbound.asn_received``), so a subscriber to ``inbound.asn_status_changed`` sees every step of every ASN.
    ``reason`` says why, in the words of whoever made the step ("receiving started", a cancellation's reason).
    """

    name: ClassVar[str] = "inbound.asn_status_changed"

    asn_id: int
    reference: str
    from_status: str
    to_status: str
    reason: str = ""


@dataclass(frozen=True)
class AsnCancelled(_AsnEvent):
    """The ASN was cancelled before anything was received; ``reason`` says why."""

    name: ClassVar[str] = "inbound.asn_cancelled"

    asn_id: int
    reference: str
    reason: str


@dataclass(frozen=True)
class AsnReceived(_AsnEvent):
    """Receiving is closed: what was counted, line by line (every lot, damaged units included)."""

    name: ClassVar[str] = "inbound.asn_received"

    asn_id: int
    reference: str
    closed_at: str
    expected_units: int
    received_units: int
    damaged_units: int
    lines: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class AsnDiscrepancyReported(_AsnEvent):
    """The count differs from the ASN: over, short, unexpected SKUs and damaged units, per SKU."""

    name: ClassVar[str] = "inbound.asn_discrepancy_reported"

    asn_id: int
    reference: str
    report_id: int
    discrepancies: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ReplenishmentRequested(Event):
    """A pick face fell below its minimum: ``quantity`` units of the SKU should come to ``location``."""

    name: ClassVar[str] = "inbound.replenishment_requested"
    aggregate: ClassVar[str] = "replenishment_task"

    task_id: int
    pick_face_id: int
    sku_id: int
    location_id: int
    quantity: int
    sku_code: str = ""
    location_code: str = ""

    @property
    def aggregate_id(self) -> int:
        return self.task_id
