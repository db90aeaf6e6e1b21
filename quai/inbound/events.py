"""Inbound events, recorded in the outbox by the service that makes the change, in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class AsnAnnounced:
    name: ClassVar[str] = "inbound.asn_announced"
    asn_id: int
    reference: str
    expected_at: str | None
    line_count: int
    expected_units: int


@dataclass(frozen=True)
class AsnCancelled:
    name: ClassVar[str] = "inbound.asn_cancelled"
    asn_id: int
    reference: str
    reason: str


@dataclass(frozen=True)
class AsnReceived:
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
class AsnDiscrepancyReported:
    """The count differs from the ASN: over, short, unexpected SKUs and damaged units, per SKU."""

    name: ClassVar[str] = "inbound.asn_discrepancy_reported"
    asn_id: int
    reference: str
    report_id: int
    discrepancies: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ReplenishmentRequested:
    name: ClassVar[str] = "inbound.replenishment_requested"
    task_id: int
    pick_face_id: int
    sku_id: int
    location_id: int
    quantity: int
