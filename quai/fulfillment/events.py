"""Fulfilment events, recorded in the outbox by the service that makes the change, in the same transaction.

Events about a merchant's orders (``pick_confirmed``, ``pick_short``, ``tote_completed``) carry that merchant: a tote
of single-unit orders of two merchants completes once per merchant, each event naming only its own orders. Batch
and wave events belong to the warehouse (no merchant).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from quai.core.events import Event


@dataclass(frozen=True)
class WaveReleased(Event):
    """A wave went to the floor: how many orders and batches, and the orders it left out (with the reason)."""

    name: ClassVar[str] = "fulfilment.wave_released"
    aggregate: ClassVar[str] = "wave"

    wave_id: int
    site_id: int
    order_count: int
    batch_ids: list[int] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    @property
    def aggregate_id(self) -> int:
        return self.wave_id


@dataclass(frozen=True)
class BatchStatusChanged(Event):
    """A pick batch moved along its state machine (open → picking ⇄ paused → done, or cancelled)."""

    name: ClassVar[str] = "fulfilment.batch_status_changed"
    aggregate: ClassVar[str] = "pick_batch"

    batch_id: int
    from_status: str
    to_status: str
    operator_id: int | None = None

    @property
    def aggregate_id(self) -> int:
        return self.batch_id


@dataclass(frozen=True)
class PickConfirmed(Event):
    """Units of an order line went from a location into a tote (they stay in the ledger, in the tote)."""

    name: ClassVar[str] = "fulfilment.pick_confirmed"
    aggregate: ClassVar[str] = "order"

    order_id: int
    batch_id: int
    task_id: int
    sku_id: int
    sku_code: str
    quantity: int
    lot: str
    from_location_code: str
    tote_code: str
    operator_id: int | None = None

    @property
    def aggregate_id(self) -> int:
        return self.order_id


@dataclass(frozen=True)
class PickShort(Event):
    """A place held fewer units than the books said; ``resolution``: other_location or backordered."""

    name: ClassVar[str] = "fulfilment.pick_short"
    aggregate: ClassVar[str] = "order"

    order_id: int
    batch_id: int
    task_id: int
    sku_code: str
    location_code: str
    missing_quantity: int
    resolution: str
    new_location_code: str = ""
    operator_id: int | None = None

    @property
    def aggregate_id(self) -> int:
        return self.order_id


@dataclass(frozen=True)
class ToteCompleted(Event):
    """Every pick bound for a tote is done (picked, short or cancelled): it may go to the pack station. The orders
    stay ``picking`` until packed."""

    name: ClassVar[str] = "fulfilment.tote_completed"
    aggregate: ClassVar[str] = "tote"

    tote_code: str
    batch_id: int
    order_ids: list[int] = field(default_factory=list)

    @property
    def aggregate_id(self) -> str:
        return self.tote_code
